"""Clips of the world: sampled motion, per-frame renders with ground truth, trajectories and impact events.

    spec = sample_clip(np.random.default_rng(0), n_frames=16)
    clip = render_clip(spec, 128, 128)       # clip.frames[k] is a Render; clip.images is (T, H, W, 3)
    clip.trajectories[0].center              # (T, 2) box centre of item 1 in every frame
    clip.events                              # collisions, floor bounces, wall bounces, footsteps
    audio = render_soundtrack(clip)          # mediagen.world.sound
    save_clip(clip, "/tmp/clip.mp4")         # H.264 + AAC with the sound track
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mediagen.errors import RequestError
from mediagen.world.geometry import screen_box
from mediagen.world.physics import (
    ClipSpec,
    Event,
    Motion,
    Simulation,
    facing_for,
    hull_points,
    simulate,
    view_walls,
    wall_clearance,
)
from mediagen.world.render import Render, render_scene
from mediagen.world.sample import REF_HEIGHT, item_corners, sample_scene
from mediagen.world.spec import Camera, FigureSpec, ObjectSpec, SceneSpec
from mediagen.world.splits import SPLITS

CLIP_FRAMES = (16, 64)  # range of n_frames that sample_clip draws clips for
PAN_RATE = (2.0, 4.0)  # degrees per second of a camera pan
PAN_MAX = 8.0  # degrees over a whole clip
FALL_ENTRY_PAD = (0.1, 0.6)  # metres above the top of the view a falling object starts
FRICTION_SECONDS = 2.5  # longer clips get a slicker floor so that things keep moving
MIN_WALK_S = 1.2  # seconds a sampled walk lasts at least (or the whole clip when shorter)
EARLIEST_EVENT = 0.25  # seconds: sampled clips do not open with an object already hitting something


@dataclass
class Trajectory:
    """Per-frame motion of one item (instance id `id`); pixel quantities are at the clip's resolution."""

    id: int
    kind: str  # "object" or "figure"
    position: np.ndarray  # (T, 3) world base centre (x, y, z)
    velocity: np.ndarray  # (T, 3) world velocity, m/s
    yaw: np.ndarray  # (T,) rotation (objects) or facing (figures), radians
    box: np.ndarray  # (T, 4) screen box (x0, y0, x1, y1) of the item's whole solid (occlusion ignored)
    center: np.ndarray  # (T, 2) centre of `box`
    center_stable: np.ndarray  # (T, 2) the same centre seen by the first frame's camera (pan removed)
    in_view: np.ndarray  # (T,) bool: the whole box lies inside the image

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of lists."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}


@dataclass
class Clip:
    """A rendered clip: per-frame renders, trajectories of every item, and the impact events."""

    spec: ClipSpec
    frames: list[Render]
    trajectories: list[Trajectory]  # trajectories[k] is instance id k + 1
    events: list[Event]
    cameras: list[Camera]
    simulation: Simulation = field(repr=False)

    @property
    def fps(self) -> float:
        """Frames per second."""
        return self.spec.fps

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return len(self.frames)

    @property
    def width(self) -> int:
        """Frame width in pixels."""
        return self.frames[0].width

    @property
    def height(self) -> int:
        """Frame height in pixels."""
        return self.frames[0].height

    @property
    def duration(self) -> float:
        """Seconds the clip lasts."""
        return self.spec.duration

    @property
    def images(self) -> np.ndarray:
        """All frames, (T, H, W, 3) uint8."""
        return np.stack([r.image for r in self.frames])

    def trajectory(self, instance_id: int) -> Trajectory:
        """The trajectory of one instance id (1-based)."""
        return self.trajectories[instance_id - 1]

    def to_dict(self) -> dict[str, Any]:
        """Spec, trajectories and events as a JSON-safe dict (the pixels are left out)."""
        return {
            "spec": self.spec.to_dict(),
            "width": self.width,
            "height": self.height,
            "trajectories": [t.to_dict() for t in self.trajectories],
            "events": [e.to_dict() for e in self.events],
        }


# ----------------------------------------------------------------------------- rendering


def _item(scene: SceneSpec, instance_id: int) -> ObjectSpec | FigureSpec:
    """The object or figure behind an instance id."""
    n = len(scene.objects)
    return scene.objects[instance_id - 1] if instance_id <= n else scene.figures[instance_id - n - 1]


def item_hull(item: ObjectSpec | FigureSpec) -> np.ndarray:
    """World points (P, 3) whose screen box is the item's: the solid's hull, or a figure's padded joints."""
    return hull_points(item) if isinstance(item, ObjectSpec) else item_corners(item)


def _trajectories(sim: Simulation, scenes: list[SceneSpec], width: int, height: int) -> list[Trajectory]:
    """Trajectories of every item from the simulation and the per-frame scenes."""
    n_obj = len(sim.spec.scene.objects)
    cam0 = scenes[0].camera
    out = []
    for i in range(sim.position.shape[1]):
        boxes, stable = [], []
        for sc in scenes:
            pts = item_hull(_item(sc, i + 1))
            boxes.append(screen_box(sc.camera, pts, width, height) or (math.nan,) * 4)
            stable.append(screen_box(cam0, pts, width, height) or (math.nan,) * 4)
        box = np.asarray(boxes, dtype=np.float64)  # (T, 4)
        sb = np.asarray(stable, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            inside = (box[:, 0] >= 0) & (box[:, 1] >= 0) & (box[:, 2] <= width) & (box[:, 3] <= height)
        out.append(
            Trajectory(
                id=i + 1,
                kind="object" if i < n_obj else "figure",
                position=sim.position[:, i].copy(),
                velocity=sim.velocity[:, i].copy(),
                yaw=sim.yaw[:, i].copy(),
                box=box,
                center=(box[:, :2] + box[:, 2:]) / 2.0,
                center_stable=(sb[:, :2] + sb[:, 2:]) / 2.0,
                in_view=inside,
            )
        )
    return out


def render_clip(spec: ClipSpec, width: int = 128, height: int = 128, antialias: bool = True,
                simulation: Simulation | None = None) -> Clip:
    """Simulate `spec` (unless given its simulation) and render every frame with `render_scene`."""  # fmt: skip
    if not (isinstance(width, int) and isinstance(height, int)) or width < 8 or height < 8:
        raise RequestError(f"clip size must be whole pixels, at least 8 x 8; got {width} x {height}")
    sim = simulation if simulation is not None else simulate(spec)
    scenes = [sim.scene(k) for k in range(spec.n_frames)]
    frames = [render_scene(sc, width, height, antialias=antialias) for sc in scenes]
    traj = _trajectories(sim, scenes, width, height)
    return Clip(spec, frames, traj, list(sim.events), [sc.camera for sc in scenes], sim)


# ----------------------------------------------------------------------------- output


def save_clip(clip: Clip, path: str | Path, sample_rate: int = 16000, audio: bool = True,
              recipe: dict | None = None) -> Path:
    """Write a clip as MP4 / WebM with its sound track (when `audio`), or as a silent GIF."""  # fmt: skip
    from mediagen.media import save_video
    from mediagen.world.sound import render_soundtrack

    path = Path(path)
    track = None
    if audio and path.suffix.lower() != ".gif":
        track = render_soundtrack(clip, sample_rate)
    rate = sample_rate if track is not None else None
    return save_video(path, list(clip.images), clip.fps, audio=track, sample_rate=rate, recipe=recipe)


def contact_strip(clip: Clip, columns: int = 8, maps: tuple[str, ...] = ("image",), every: int | None = None,
                  mark_events: bool = True) -> np.ndarray:
    """A sheet (H', W', 3) uint8 of frames in rows of `columns`, one band per map (image, seg_image,
    depth_image, pose_image, ...); frames with an event get a red bar along their top."""  # fmt: skip
    step = every or max(1, math.ceil(clip.n_frames / columns))
    idx = list(range(0, clip.n_frames, step))
    ev = {e.frame for e in clip.events}
    h, w = clip.height, clip.width
    rows = []
    for name in maps:
        tiles = []
        for k in idx:
            t = np.array(getattr(clip.frames[k], name), dtype=np.uint8, copy=True)
            if mark_events and k in ev:
                t[: max(1, h // 32)] = (230, 30, 30)
            tiles.append(t)
        while len(tiles) % columns:
            tiles.append(np.zeros((h, w, 3), dtype=np.uint8))
        for r in range(0, len(tiles), columns):
            rows.append(np.concatenate([np.pad(t, ((1, 1), (1, 1), (0, 0))) for t in tiles[r : r + columns]], axis=1))
    return np.concatenate(rows, axis=0)


# ----------------------------------------------------------------------------- sampling


def _check_frames(n_frames: int, fps: float) -> None:
    """Reject clip lengths and rates sample_clip does not draw."""
    if not CLIP_FRAMES[0] <= int(n_frames) <= CLIP_FRAMES[1]:
        raise RequestError(f"n_frames must be between {CLIP_FRAMES[0]} and {CLIP_FRAMES[1]}, got {n_frames}")
    if not 1 <= float(fps) <= 60:
        raise RequestError(f"fps must be between 1 and 60, got {fps}")


def _in_view(cam: Camera, item, aspect: float) -> bool:
    """True when the item's screen box lies inside the reference-size image."""
    w = round(REF_HEIGHT * aspect)
    box = screen_box(cam, item_hull(item), w, REF_HEIGHT)
    return box is not None and box[0] >= 0 and box[1] >= 0 and box[2] <= w and box[3] <= REF_HEIGHT


def _pick_pan(rng: np.random.Generator, scene: SceneSpec, duration: float, pan_prob: float) -> float:
    """A pan (degrees) that keeps every item in view at both ends, or 0."""
    if rng.random() >= pan_prob:
        return 0.0
    total = min(float(rng.uniform(*PAN_RATE)) * duration, float(rng.uniform(0.6, 1.0)) * PAN_MAX)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    items = [*scene.objects, *scene.figures]
    for pan in (sign * total, -sign * total, sign * total / 2, -sign * total / 2):
        cam = replace(scene.camera, yaw=scene.camera.yaw + pan)
        if all(_in_view(cam, it, scene.aspect) for it in items):
            return round(pan, 3)
    return 0.0


def _fall_height(obj: ObjectSpec, cam: Camera, aspect: float) -> float:
    """Lowest base height at which the object is entirely above the top of the view."""
    w = round(REF_HEIGHT * aspect)
    y = 0.0
    while y < 12.0:
        box = screen_box(cam, item_hull(replace(obj, y=y)), w, REF_HEIGHT)
        if box is not None and box[3] < 0:
            return y
        y += 0.1
    return y


def _direction(rng: np.random.Generator, depth_prob: float = 0.2) -> float:
    """A floor heading angle (radians from +x towards +z): mostly sideways, sometimes in depth."""
    if rng.random() < depth_prob:
        return float(rng.choice([-1.0, 1.0]) * math.pi / 2 + rng.uniform(-0.35, 0.35))
    base = 0.0 if rng.random() < 0.5 else math.pi
    return base + float(rng.uniform(-0.6, 0.6))


def _object_motion(rng: np.random.Generator, i: int, scene: SceneSpec, duration: float, probs: dict) -> Motion:
    """A random motion for object i; aims at another object half the time to make collisions."""
    o = scene.objects[i]
    kinds = ["rest", "move", "fall", "bounce"]
    p = np.array([probs[k] for k in kinds], dtype=np.float64)
    if o.shape != "sphere":
        p[1] += p[3]
        p[3] = 0.0
    kind = kinds[int(rng.choice(4, p=p / p.sum()))]
    if kind == "rest":
        return Motion("rest")
    others = [q for j, q in enumerate(scene.objects) if j != i]
    if others and rng.random() < 0.5:
        q = others[int(rng.integers(len(others)))]
        ang = math.atan2(q.z - o.z, q.x - o.x) + float(rng.uniform(-0.15, 0.15))
    else:
        ang = _direction(rng)
    spin = float(rng.uniform(-1.5, 1.5)) if rng.random() < 0.5 else 0.0
    if kind == "move":
        speed = float(rng.uniform(1.0, 3.2))
        return Motion("roll" if o.shape == "sphere" else "slide", (speed * math.cos(ang), 0.0, speed * math.sin(ang)),
                      round(spin, 3))  # fmt: skip
    if kind == "bounce":
        speed = float(rng.uniform(0.6, 1.8))
        vy = float(rng.uniform(2.5, 4.0))
        return Motion("bounce", (speed * math.cos(ang), vy, speed * math.sin(ang)))
    drift = float(rng.uniform(0.3, 1.2)) if rng.random() < 0.3 else 0.0
    start = float(rng.uniform(0.0, max(0.0, duration - 2.0))) if rng.random() < 0.5 else 0.0
    return Motion("fall", (drift * math.cos(ang), 0.0, drift * math.sin(ang)), round(spin, 3), round(start, 3))


def _figure_motion(rng: np.random.Generator, fig: FigureSpec, scene: SceneSpec, duration: float,
                   pan: float, probs: dict) -> tuple[FigureSpec, Motion]:
    """A walk, wave or stand for a figure, its pose words and facing made to match."""  # fmt: skip
    kinds = ["walk", "wave", "stand"]
    p = np.array([probs[k] for k in kinds], dtype=np.float64)
    kind = kinds[int(rng.choice(3, p=p / p.sum()))]
    if kind == "stand":
        return replace(fig, pose="standing", angles=None), Motion("stand")
    if kind == "wave":
        facing = float(rng.uniform(-0.5, 0.5))
        return replace(fig, pose="waving", angles=None, facing=round(facing, 4)), Motion(
            "wave", phase=round(float(rng.uniform(0, 2 * math.pi)), 4)
        )
    ang = _direction(rng, depth_prob=0.15)
    speed = float(rng.uniform(0.8, 1.4))
    phase = round(float(rng.uniform(0, 2 * math.pi)), 4)
    for a in (ang, ang + math.pi):  # the other way when there is no room ahead
        v = tuple(round(c, 4) for c in (speed * math.cos(a), 0.0, speed * math.sin(a)))
        stop = _walk_stop(fig, v, scene, duration, pan)
        if stop is None or stop >= min(MIN_WALK_S, 0.6 * duration):
            m = Motion("walk", v, stop=stop, phase=phase)
            return replace(fig, pose="walking", angles=None, facing=round(facing_for(v[0], v[2]), 4)), m
    return replace(fig, pose="waving", angles=None, facing=0.0), Motion("wave", phase=phase)


def _walk_stop(fig: FigureSpec, v, scene: SceneSpec, duration: float, pan: float) -> float | None:
    """Second at which a walker must stop to stay clear of the view's walls (None: it never has to)."""
    cams = [scene.camera] + ([replace(scene.camera, yaw=scene.camera.yaw + pan)] if pan else [])
    walls = view_walls(cams, scene.aspect)
    r, h = 0.3 * fig.height, fig.height
    t, dt = 0.0, 0.05
    while t <= duration:
        x, z = fig.x + v[0] * t, fig.z + v[2] * t
        if any(wall_clearance(w, x, 0.0, z, r, h) < 0 for w in walls):
            return round(max(0.0, t - dt), 3)
        t += dt
    return None


def sample_clip(rng: np.random.Generator, n_frames: int = 16, split: str = "train", fps: float = 8.0,
                aspect: float = 1.0, n_objects: int | None = None, figure_prob: float = 0.3,
                pan_prob: float = 0.25, background: str | None = None, motion_probs: dict | None = None,
                tries: int = 60) -> ClipSpec:
    """A random clip: 1-4 objects (or n_objects) resting, sliding, rolling, bouncing or falling, maybe a
    walking / waving figure and a slow pan; deterministic from `rng`; at least one thing moves, every item
    stays in view, and nothing collides in mid-air."""  # fmt: skip
    _check_frames(n_frames, fps)
    if split not in SPLITS:
        raise RequestError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    probs = {"rest": 0.25, "move": 0.45, "fall": 0.18, "bounce": 0.12, "walk": 0.6, "wave": 0.25, "stand": 0.15}
    probs.update(motion_probs or {})
    duration = n_frames / fps
    for _ in range(tries):
        n = int(rng.integers(1, 5)) if n_objects is None else int(n_objects)
        scene = sample_scene(rng, n_objects=n, split=split, with_figure_prob=figure_prob, aspect=aspect,
                             background=background)  # fmt: skip
        pan = _pick_pan(rng, scene, duration, pan_prob)
        motions = [_object_motion(rng, i, scene, duration, probs) for i in range(len(scene.objects))]
        for i in _stacked(scene.objects):
            motions[i] = Motion("rest")  # stacks stand still
        objs = []
        for o, m in zip(scene.objects, motions):
            if m.kind in ("roll", "bounce"):
                o = replace(o, pattern="none")  # the renderer turns solids about the vertical only
            if m.kind == "fall":
                o = replace(o, y=round(_fall_height(o, scene.camera, aspect) + float(rng.uniform(*FALL_ENTRY_PAD)), 3))
            objs.append(o)
        figs = []
        for f in scene.figures:
            f2, m = _figure_motion(rng, f, scene, duration, pan, probs)
            figs.append(f2)
            motions.append(m)
        scene = replace(scene, objects=objs, figures=figs)
        friction = round(float(rng.uniform(0.5, 1.0)) * min(1.0, FRICTION_SECONDS / duration), 3)
        spec = ClipSpec(scene, motions, n_frames, fps, pan, int(rng.integers(2**31)), split, friction)
        if _acceptable(spec):
            return spec
    raise RuntimeError(f"could not sample a clip in {tries} tries")


def _stacked(objects: list[ObjectSpec]) -> set[int]:
    """Indices of objects standing on another one and of the objects under them."""
    out = set()
    for i, o in enumerate(objects):
        if o.y > 0:
            out.add(i)
            out |= {j for j, b in enumerate(objects) if j != i and b.y < o.y and (b.x, b.z) == (o.x, o.z)}
    return out


def _acceptable(spec: ClipSpec) -> bool:
    """True when something moves, nothing is hit at once or in mid-air, and every item stays in view once landed."""
    moving = spec.pan != 0 or any(m.kind not in ("rest", "stand") for m in spec.motions)
    if not moving:
        return False
    sim = simulate(spec)
    n_obj = len(spec.scene.objects)
    for e in sim.events:
        if e.kind != "footstep" and e.time < EARLIEST_EVENT:
            return False
        if e.kind == "collision" and any(sim.position[e.frame, i - 1, 1] > 0.05 for i in e.ids if i <= n_obj):
            return False
    landed = np.ones((spec.n_frames, sim.position.shape[1]), dtype=bool)
    for i, m in enumerate(spec.motions[:n_obj]):
        if m.kind == "fall":
            hit = [e.frame for e in sim.events if e.kind == "floor" and e.ids == (i + 1,)]
            if not hit:
                return False
            landed[: hit[0], i] = False
    for k in range(spec.n_frames):
        sc = sim.scene(k)
        items = [*sc.objects, *sc.figures]
        for i, it in enumerate(items):
            if landed[k, i] and not _in_view(sc.camera, it, sc.aspect):
                return False
    return True
