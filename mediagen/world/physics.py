"""Deterministic motion of the world's items: sliding, rolling, bouncing, falling, collisions, walking figures.

Objects are upright rigid bodies: on the floor (or on the flat top of a cube or cylinder) they slide or
roll with constant deceleration, in the air they fall under gravity and bounce on landing. They hit each
other as circles on the floor plane (`contact_radius`; impulses with restitution and a little friction
that spins them) and bounce off the walls of the view: the planes through the camera and the image's
left, right and bottom edges (at the start and end of a camera pan; objects are kept inside by their full
footprint and height) plus a far wall. Figures are kinematic: they walk along a straight line with a
sinusoidal gait or wave, and objects bounce off them. Every impact is an `Event` with its exact time, the
frame it shows on, the items, materials, sizes and impact speed; footsteps fall on the gait's heel
strikes. Integration is semi-implicit Euler at SUBSTEP_HZ in plain floats, so the same ClipSpec always
gives the same motion.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from mediagen.errors import RequestError
from mediagen.world.geometry import camera_frame, dims, footprint_radius, yaw_matrix
from mediagen.world.spec import FIGURE_HEIGHT, SIZE_RADIUS, Camera, ObjectSpec, SceneSpec

G = 9.81  # world units are metres
SUBSTEP_HZ = 240.0
ROLL_DECEL = 0.3  # m/s^2 on a rolling sphere
SLIDE_DECEL = 0.9  # m/s^2 on a sliding solid
SPIN_DAMP = 1.2  # 1/s, decay of the yaw rate of an object on the floor
WALL_RESTITUTION = 0.8
BODY_RESTITUTION = 0.85
CONTACT_FRICTION = 0.25  # tangential impulse as a share of the normal one
SETTLE_SPEED = 0.6  # floor impacts slower than this come to rest silently
EVENT_SPEED = 0.25  # slower wall / body contacts make no event
EVENT_COOLDOWN = 0.15  # seconds before the same contact makes another event
Z_FAR = 12.0  # the far wall of the arena
VIEW_MARGIN = 0.02  # walls stand this share of the half field of view inside the image edges
DENSITY = MappingProxyType({"matte": 1.0, "metal": 3.0})
FIGURE_RADIUS = 0.12  # a figure's footprint, as a share of its height
FLAT_TOPS = ("cube", "cylinder")  # shapes other objects can rest on
CONTACT_SCALE = MappingProxyType({"sphere": 1.0, "cube": 1.12, "cylinder": 1.0, "cone": 0.8, "pyramid": 0.95})  # x half
OBJECT_MOTIONS = ("rest", "slide", "roll", "bounce", "fall")
FIGURE_MOTIONS = ("stand", "walk", "wave")
EVENT_KINDS = ("collision", "floor", "wall", "footstep")
GAIT_THIGH = 25.0  # degrees of thigh swing either side of vertical that the knee and arm swings go with
GAIT_CADENCE = 1.8  # steps per second at GAIT_SPEED for a figure of the default height
GAIT_SPEED = 1.3  # m/s
GAIT_KNEE = 45.0  # degrees of knee bend at mid swing
GAIT_ARM = 22.0  # degrees of upper-arm swing
GAIT_SETTLE = 0.4  # seconds for the legs to come together after a walk stops
WAVE_HZ = 1.4


@dataclass
class Motion:
    """How one item moves: objects rest/slide/roll/bounce/fall, figures stand/walk/wave.

    `velocity` is the initial world velocity (x right, y up, z away) in m/s, `spin` the initial yaw rate in
    rad/s, `start` the seconds an object waits (frozen) before its motion begins, `stop` the second a
    figure stops walking (None = never), `phase` the gait or wave phase in radians.
    """

    kind: str = "rest"
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    spin: float = 0.0
    start: float = 0.0
    stop: float | None = None
    phase: float = 0.0

    def __post_init__(self) -> None:
        """Normalise the velocity to a float triple."""
        v = tuple(float(c) for c in self.velocity)
        if len(v) != 3 or not all(math.isfinite(c) for c in v):
            raise RequestError(f"motion velocity must be three finite numbers (x, y, z), got {self.velocity!r}")
        self.velocity = v
        if not (math.isfinite(self.start) and self.start >= 0) or (self.stop is not None and not self.stop >= 0):
            raise RequestError(f"motion start and stop must be seconds >= 0, got start={self.start}, stop={self.stop}")


@dataclass
class ClipSpec:
    """Everything needed to simulate and render a clip: the first frame's scene and one Motion per item.

    Items are ordered like the renderer's instances: scene.objects, then scene.figures. `pan` is the total
    camera yaw change over the clip in degrees (positive pans right); `seed` drives the sound's noise;
    `friction` scales the floor's deceleration of sliding and rolling objects (0 = ice).
    """

    scene: SceneSpec
    motions: list[Motion] = field(default_factory=list)
    n_frames: int = 16
    fps: float = 8.0
    pan: float = 0.0
    seed: int = 0
    split: str = "train"
    friction: float = 1.0

    def __post_init__(self) -> None:
        """Check counts, ranges and motion kinds."""
        n_items = len(self.scene.objects) + len(self.scene.figures)
        if not self.motions:
            self.motions = [Motion("rest") for _ in self.scene.objects] + [Motion("stand") for _ in self.scene.figures]
        if len(self.motions) != n_items:
            raise RequestError(
                f"a clip needs one motion per item: {n_items} items (objects, then figures), "
                f"{len(self.motions)} motions"
            )
        if not 2 <= int(self.n_frames) <= 1024:
            raise RequestError(f"n_frames must be between 2 and 1024, got {self.n_frames}")
        if not 0 < float(self.fps) <= 120:
            raise RequestError(f"fps must be in (0, 120], got {self.fps}")
        if not abs(float(self.pan)) <= 60:
            raise RequestError(f"pan must be at most 60 degrees either way, got {self.pan}")
        if not 0 <= float(self.friction) <= 10:
            raise RequestError(f"friction must be between 0 and 10 (1 = default floor), got {self.friction}")
        self.n_frames, self.fps, self.pan = int(self.n_frames), float(self.fps), float(self.pan)
        self.friction = float(self.friction)
        n_obj = len(self.scene.objects)
        for i, m in enumerate(self.motions):
            allowed = OBJECT_MOTIONS if i < n_obj else FIGURE_MOTIONS
            if m.kind not in allowed:
                what = "object" if i < n_obj else "figure"
                raise RequestError(f"unknown {what} motion {m.kind!r}; expected one of {', '.join(allowed)}")
            if i >= n_obj and abs(m.velocity[1]) > 0:
                raise RequestError("figures walk on the floor: their velocity's y component must be 0")

    @property
    def duration(self) -> float:
        """Seconds the clip lasts (n_frames / fps)."""
        return self.n_frames / self.fps

    def time(self, frame: int) -> float:
        """Time in seconds at which `frame` is shown."""
        return frame / self.fps

    def camera(self, frame: int) -> Camera:
        """The camera of one frame: the scene's camera turned by its share of the pan."""
        cam = self.scene.camera
        if not self.pan:
            return cam
        return replace(cam, yaw=cam.yaw + self.pan * frame / max(self.n_frames - 1, 1))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            "scene": self.scene.to_dict(),
            "motions": [asdict(m) | {"velocity": list(m.velocity)} for m in self.motions],
            "n_frames": self.n_frames,
            "fps": self.fps,
            "pan": self.pan,
            "seed": self.seed,
            "split": self.split,
            "friction": self.friction,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipSpec:
        """Inverse of `to_dict`."""
        return cls(
            scene=SceneSpec.from_dict(d["scene"]),
            motions=[Motion(**m) for m in d.get("motions", [])],
            n_frames=int(d.get("n_frames", 16)),
            fps=float(d.get("fps", 8.0)),
            pan=float(d.get("pan", 0.0)),
            seed=int(d.get("seed", 0)),
            split=str(d.get("split", "train")),
            friction=float(d.get("friction", 1.0)),
        )


@dataclass(frozen=True)
class Event:
    """One impact: two items colliding, an object hitting the floor or a wall of the view, or a footstep.

    `ids` are instance ids (1-based: objects, then figures, as in Render.objects); `materials`, `sizes` and
    `shapes` give each one's ("foot" / "medium" / "person" for figures). `time` is the exact contact time in
    seconds, `frame` the frame nearest to it (its sound starts at frame / fps), `speed` the impact speed
    along the contact normal in m/s, `position` the contact point in world coordinates.
    """

    kind: str
    time: float
    frame: int
    ids: tuple[int, ...]
    materials: tuple[str, ...]
    sizes: tuple[str, ...]
    shapes: tuple[str, ...]
    speed: float
    position: tuple[float, float, float]

    @property
    def material(self) -> str:
        """The material heard most: metal when any metal takes part, else the first item's."""
        return "metal" if "metal" in self.materials else self.materials[0]

    @property
    def size(self) -> str:
        """The size of the first item."""
        return self.sizes[0]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            "kind": self.kind, "time": self.time, "frame": self.frame, "ids": list(self.ids),
            "materials": list(self.materials), "sizes": list(self.sizes), "shapes": list(self.shapes),
            "material": self.material, "size": self.size, "speed": self.speed, "position": list(self.position),
        }  # fmt: skip


@dataclass
class Simulation:
    """The simulated motion of a clip, sampled at its frames."""

    spec: ClipSpec
    times: np.ndarray  # (T,) seconds
    position: np.ndarray  # (T, N, 3) world base centre of every item
    velocity: np.ndarray  # (T, N, 3) m/s
    yaw: np.ndarray  # (T, N) radians (figures: their facing)
    angles: list[list[dict[str, list[float]]]]  # [frame][figure] limb angles for FigureSpec.angles
    events: list[Event]

    def scene(self, frame: int) -> SceneSpec:
        """The SceneSpec of one frame: items moved, figures posed, camera panned."""
        sc = self.spec.scene
        n_obj = len(sc.objects)
        objs = []
        for i, o in enumerate(sc.objects):
            x, y, z = (float(v) for v in self.position[frame, i])
            objs.append(replace(o, x=x, y=y, z=z, rotation=float(self.yaw[frame, i])))
        figs = []
        for j, f in enumerate(sc.figures):
            x, _, z = (float(v) for v in self.position[frame, n_obj + j])
            ang = self.angles[frame][j]
            figs.append(replace(f, x=x, z=z, facing=float(self.yaw[frame, n_obj + j]), angles=ang or f.angles))
        return SceneSpec(objects=objs, figures=figs, camera=self.spec.camera(frame),
                         background=sc.background, aspect=sc.aspect)  # fmt: skip


# ----------------------------------------------------------------------------- figures


def cadence(speed: float, height: float) -> float:
    """Steps per second of a walk: faster walks take quicker steps, taller walkers slower ones."""
    return GAIT_CADENCE * (max(speed, 0.05) / GAIT_SPEED) ** 0.4 * math.sqrt(FIGURE_HEIGHT / height)


def stride_length(height: float, speed: float) -> float:
    """Distance a figure covers in one gait cycle (two steps) at `speed` m/s."""
    return 2.0 * speed / cadence(speed, height)


def thigh_swing(height: float, speed: float) -> float:
    """Degrees the thighs swing either side of vertical so that the feet span one step at heel strike."""
    step = stride_length(height, speed) / 2.0
    return math.degrees(math.asin(min(0.9, step / height)))  # legs are half the height long


def walk_angles(phase: float, amp: float = 1.0, thigh: float = GAIT_THIGH) -> dict[str, list[float]]:
    """Limb angles (abduction, flexion) in degrees of a walking gait at `phase`; left heel strikes at pi/2.

    `thigh` is the swing of the thighs either side of vertical; knees and arms scale with it; `amp` in
    0..1 brings the legs together when a walk stops.
    """
    s, c = math.sin(phase), math.cos(phase)
    amp *= thigh / GAIT_THIGH
    lt, rt = amp * GAIT_THIGH * s, -amp * GAIT_THIGH * s
    lk, rk = amp * GAIT_KNEE * max(0.0, c) ** 1.5, amp * GAIT_KNEE * max(0.0, -c) ** 1.5  # swing-leg knee bend
    la, ra = -amp * GAIT_ARM * s, amp * GAIT_ARM * s

    def r2(v: float) -> float:
        return round(v, 3)

    return {
        "l_thigh": [3.0, r2(lt)], "l_shin": [2.0, r2(lt - lk - 3.0 * amp)],
        "r_thigh": [3.0, r2(rt)], "r_shin": [2.0, r2(rt - rk - 3.0 * amp)],
        "l_uarm": [7.0, r2(la)], "l_farm": [6.0, r2(la + 14.0 * amp + 4.0)],
        "r_uarm": [7.0, r2(ra)], "r_farm": [6.0, r2(ra + 14.0 * amp + 4.0)],
    }  # fmt: skip


def wave_angles(t: float, phase: float = 0.0) -> dict[str, list[float]]:
    """Limb angles of a figure waving its right hand, at time t seconds."""
    swing = 24.0 * math.sin(2.0 * math.pi * WAVE_HZ * t + phase)
    return {
        "l_uarm": [10.0, 0.0], "l_farm": [8.0, 8.0], "l_thigh": [4.0, 0.0], "l_shin": [3.0, 0.0],
        "r_uarm": [round(122.0 + 0.25 * swing, 3), 10.0], "r_farm": [round(160.0 + swing, 3), 12.0],
        "r_thigh": [4.0, 0.0], "r_shin": [3.0, 0.0],
    }  # fmt: skip


def _walk_state(m: Motion, height: float, t: float) -> tuple[float, float, float]:
    """(seconds walked, gait phase, swing amplitude) of a walking figure at time t."""
    speed = math.hypot(m.velocity[0], m.velocity[2])
    walked = t if m.stop is None else min(t, m.stop)
    phase = m.phase + math.pi * cadence(speed, height) * walked  # 2 pi per two steps
    amp = 1.0 if m.stop is None or t <= m.stop else max(0.0, 1.0 - (t - m.stop) / GAIT_SETTLE)
    return walked, phase, amp


def facing_for(vx: float, vz: float) -> float:
    """FigureSpec.facing that makes a figure look along the floor direction (vx, vz)."""
    return math.atan2(-vx, -vz)


def figure_pose(m: Motion, height: float, t: float) -> dict[str, list[float]] | None:
    """Animated limb angles of a figure at time t (None: keep the figure's own pose)."""
    if m.kind == "walk":
        _, phase, amp = _walk_state(m, height, t)
        return walk_angles(phase, amp, thigh_swing(height, math.hypot(m.velocity[0], m.velocity[2])))
    if m.kind == "wave":
        return wave_angles(t, m.phase)
    return None


def footstep_times(m: Motion, height: float, t_end: float) -> list[tuple[float, str]]:
    """(time, 'left' / 'right') of the heel strikes of a walking figure in [0, t_end]."""
    speed = math.hypot(m.velocity[0], m.velocity[2])
    if m.kind != "walk" or speed <= 0:
        return []
    rate = math.pi * cadence(speed, height)  # rad/s
    t_stop = t_end if m.stop is None else min(t_end, m.stop)
    out = []
    k = math.ceil((m.phase - math.pi / 2) / math.pi - 1e-9)  # first strike phase pi/2 + k pi >= phase
    while True:
        t = (math.pi / 2 + k * math.pi - m.phase) / rate
        if t > t_stop + 1e-9:
            break
        if t >= 0:
            out.append((t, "left" if k % 2 == 0 else "right"))
        k += 1
    return out


# ----------------------------------------------------------------------------- bodies and walls


class _Body:
    """Mutable state of one item during integration."""

    __slots__ = (
        "bounce",
        "decel",
        "figure",
        "h",
        "half",
        "id",
        "inv_mass",
        "material",
        "motion",
        "r",
        "rc",
        "round",
        "shape",
        "size",
        "spin",
        "start",
        "vx",
        "vy",
        "vz",
        "x",
        "x0",
        "y",
        "yaw",
        "z",
        "z0",
    )  # fmt: skip

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            setattr(self, k, v)


def _bodies(spec: ClipSpec) -> list[_Body]:
    """Initial state of every item."""
    out = []
    for i, (o, m) in enumerate(zip(spec.scene.objects, spec.motions)):
        half, h = dims(o)
        sphere = o.shape == "sphere"
        out.append(_Body(
            id=i + 1, figure=False, x=o.x, y=o.y, z=o.z, vx=m.velocity[0], vy=m.velocity[1], vz=m.velocity[2],
            yaw=o.rotation, spin=0.0 if sphere else m.spin, r=footprint_radius(o), h=h,
            inv_mass=1.0 / (DENSITY[o.material] * SIZE_RADIUS[o.size] ** 3),
            decel=spec.friction * (ROLL_DECEL if sphere else SLIDE_DECEL),
            bounce=(0.7 if o.material == "matte" else 0.55) if sphere else (0.45 if o.material == "matte" else 0.4),
            start=m.start, motion=m, material=o.material, size=o.size, shape=o.shape, x0=o.x, z0=o.z, round=sphere,
            rc=contact_radius(o), half=half,
        ))  # fmt: skip
    n_obj = len(spec.scene.objects)
    for j, f in enumerate(spec.scene.figures):
        m = spec.motions[n_obj + j]
        out.append(_Body(
            id=n_obj + j + 1, figure=True, x=f.x, y=0.0, z=f.z, vx=0.0, vy=0.0, vz=0.0, yaw=f.facing, spin=0.0,
            r=FIGURE_RADIUS * f.height, h=f.height, inv_mass=0.0, decel=0.0, bounce=0.0, start=0.0, motion=m,
            material="foot", size="medium", shape="person", x0=f.x, z0=f.z, round=False, rc=FIGURE_RADIUS * f.height,
            half=0.0,
        ))  # fmt: skip
        if m.kind == "walk" and (m.velocity[0] or m.velocity[2]):
            out[-1].yaw = facing_for(m.velocity[0], m.velocity[2])
    return out


def contact_radius(obj: ObjectSpec) -> float:
    """Radius of the circle standing in for an object when it touches another (walls use the footprint)."""
    return CONTACT_SCALE[obj.shape] * dims(obj)[0]


def view_walls(cams: list[Camera], aspect: float, margin: float = VIEW_MARGIN) -> list[tuple[float, ...]]:
    """Half-spaces (ax, ay, az, c) with |(ax, az)| = 1, inside where ax x + ay y + az z + c >= 0.

    One per left, right and bottom image edge of each camera (planes through the camera centre), and the
    far wall z <= Z_FAR.
    """
    walls = []
    for cam in cams:
        o, rot = camera_frame(cam)
        tv = math.tan(math.radians(cam.fov) / 2.0) * (1.0 - margin)
        th = tv * aspect
        for a in (rot[0] + th * rot[2], -rot[0] + th * rot[2], rot[1] + tv * rot[2]):
            a = a / math.hypot(a[0], a[2])
            walls.append((float(a[0]), float(a[1]), float(a[2]), -float(a @ o)))
    walls.append((0.0, 0.0, -1.0, Z_FAR))
    return walls


def wall_clearance(wall: tuple[float, float, float, float], x: float, y: float, z: float, r: float, h: float) -> float:
    """Signed distance (m) from an upright item (footprint radius r, height h, base at y) to a wall; < 0 inside it."""
    ax, ay, az, c = wall
    return ax * x + az * z + c + min(ay * y, ay * (y + h)) - r


def _hull_clearance(wall: tuple[float, ...], b: _Body) -> float:
    """Exact signed distance (m, along the wall's floor normal) from an object's solid to a wall; < 0 inside it."""
    ax, ay, az, c = wall
    base = ax * b.x + az * b.z + c
    if b.shape == "sphere":
        return base + ay * (b.y + b.half) - b.half * math.sqrt(1.0 + ay * ay)
    lo, hi = ay * b.y, ay * (b.y + b.h)
    if b.shape == "cylinder":
        return base + min(lo, hi) - b.half
    if b.shape == "cone":
        return base + min(lo - b.half, hi)
    cs, sn = math.cos(b.yaw), math.sin(b.yaw)
    corner = -b.half * (abs(ax * cs - az * sn) + abs(ax * sn + az * cs))  # nearest corner of the square base
    if b.shape == "cube":
        return base + min(lo, hi) + corner
    return base + min(lo + corner, hi)  # pyramid: base corners or apex


def hull_points(obj: ObjectSpec, n: int = 24) -> np.ndarray:
    """World points (P, 3) whose convex hull is the object's solid (circles sampled with n points)."""
    half, h = dims(obj)
    ang = 2.0 * np.pi * np.arange(n) / n
    ring = np.stack([np.cos(ang), np.zeros(n), np.sin(ang)], axis=1) * half  # (n, 3)
    sq = np.array([[sx, 0.0, sz] for sx in (-half, half) for sz in (-half, half)])
    if obj.shape == "sphere":
        lat = np.pi * (np.arange(n // 2 + 1) / (n // 2) - 0.5)  # (L,)
        pts = np.stack([np.outer(np.cos(lat), np.cos(ang)), np.repeat(np.sin(lat)[:, None], n, 1),
                        np.outer(np.cos(lat), np.sin(ang))], axis=-1).reshape(-1, 3) * half + [0.0, half, 0.0]  # fmt: skip
    elif obj.shape == "cylinder":
        pts = np.concatenate([ring, ring + [0.0, h, 0.0]])
    elif obj.shape == "cone":
        pts = np.concatenate([ring, [[0.0, h, 0.0]]])
    elif obj.shape == "cube":
        pts = np.concatenate([sq, sq + [0.0, h, 0.0]])
    else:
        pts = np.concatenate([sq, [[0.0, h, 0.0]]])
    return pts @ yaw_matrix(obj.rotation).T + np.array([obj.x, obj.y, obj.z])


def _walls(spec: ClipSpec) -> list[tuple[float, float, float, float]]:
    """Walls of the view at the first and the last frame."""
    cams = [spec.camera(0)] + ([spec.camera(spec.n_frames - 1)] if spec.pan else [])
    return view_walls(cams, spec.scene.aspect)


# ----------------------------------------------------------------------------- integration


def simulate(spec: ClipSpec) -> Simulation:
    """Integrate the clip's motion and sample it at every frame."""
    bodies = _bodies(spec)
    walls = _walls(spec)
    n_sub = max(1, math.ceil(SUBSTEP_HZ / spec.fps))
    dt = 1.0 / (spec.fps * n_sub)
    T, N = spec.n_frames, len(bodies)
    pos = np.zeros((T, N, 3))
    vel = np.zeros((T, N, 3))
    yaw = np.zeros((T, N))
    raw: list[tuple[str, float, tuple[_Body, ...], float, tuple[float, float, float]]] = []
    last: dict[tuple, float] = {}
    _place_figures(bodies, 0.0)
    for k in range(T):
        if k:
            for s in range(n_sub):
                t0 = ((k - 1) * n_sub + s) * dt
                _step(bodies, walls, t0, dt, raw, last)
        for i, b in enumerate(bodies):
            pos[k, i] = (b.x, b.y, b.z)
            vel[k, i] = (b.vx, b.vy, b.vz)
            yaw[k, i] = b.yaw
    figs = [b for b in bodies if b.figure]
    heights = [f.height for f in spec.scene.figures]
    angles = [[figure_pose(b.motion, h, k / spec.fps) for b, h in zip(figs, heights)] for k in range(T)]
    t_end = (T - 1) / spec.fps
    for b, h in zip(figs, heights):
        for t, _ in footstep_times(b.motion, h, t_end):
            x, z = _figure_xz(b, t)
            raw.append(("footstep", t, (b,), math.hypot(b.motion.velocity[0], b.motion.velocity[2]), (x, 0.0, z)))
    raw.sort(key=lambda e: (e[1], e[0], tuple(b.id for b in e[2])))
    events = [
        Event(kind, round(t, 6), min(T - 1, math.floor(t * spec.fps + 0.5)), tuple(b.id for b in bs),
              tuple(b.material for b in bs), tuple(b.size for b in bs), tuple(b.shape for b in bs),
              round(speed, 4), tuple(round(float(c), 4) for c in p))
        for kind, t, bs, speed, p in raw
    ]  # fmt: skip
    times = np.arange(T) / spec.fps
    return Simulation(spec, times, pos, vel, yaw, angles, events)


def _figure_xz(b: _Body, t: float) -> tuple[float, float]:
    """Floor position of a figure at time t."""
    m = b.motion
    if m.kind != "walk":
        return b.x0, b.z0
    walked = t if m.stop is None else min(t, m.stop)
    return b.x0 + m.velocity[0] * walked, b.z0 + m.velocity[2] * walked


def _place_figures(bodies: list[_Body], t: float) -> None:
    """Move the kinematic figures to where they are at time t."""
    for b in bodies:
        if b.figure:
            b.x, b.z = _figure_xz(b, t)
            walking = b.motion.kind == "walk" and (b.motion.stop is None or t < b.motion.stop)
            b.vx, b.vz = (b.motion.velocity[0], b.motion.velocity[2]) if walking else (0.0, 0.0)


def _step(bodies: list[_Body], walls, t0: float, dt: float, raw: list, last: dict) -> None:
    """Advance every body by dt from time t0, appending impacts to `raw`."""
    t1 = t0 + dt
    _place_figures(bodies, t1)
    for b in bodies:
        if b.figure or t1 <= b.start:
            continue
        if b.y == 0.0 and b.vx == 0.0 and b.vy == 0.0 and b.vz == 0.0 and b.spin == 0.0:
            continue  # at rest until something pushes it
        level, sup = _support(b, bodies, t1)
        if b.y > level or b.vy > 0.0:
            b.vy -= G * dt
        else:  # sliding on the floor or on a support: friction pulls towards the support's velocity
            ux, uz = (sup.vx, sup.vz) if sup is not None else (0.0, 0.0)
            rx, rz = b.vx - ux, b.vz - uz
            sp = math.hypot(rx, rz)
            if sp > 0.0:
                k = max(0.0, sp - b.decel * dt) / sp
                b.vx, b.vz = ux + rx * k, uz + rz * k
            b.spin = b.spin * math.exp(-SPIN_DAMP * dt) if abs(b.spin) > 1e-3 else 0.0
        y_prev = b.y
        b.x += b.vx * dt
        b.y += b.vy * dt
        b.z += b.vz * dt
        b.yaw += b.spin * dt
        if b.y < level:
            tc = t0 + dt * ((y_prev - level) / (y_prev - b.y)) if y_prev > level else t0
            b.y = level
            v = -b.vy
            if v > SETTLE_SPEED:
                if sup is None:
                    raw.append(("floor", tc, (b,), v, (b.x, 0.0, b.z)))
                else:
                    raw.append(("collision", tc, (b, sup), v, (b.x, level, b.z)))
                b.vy = b.bounce * v
            else:
                b.vy = 0.0
        for w, wall in enumerate(walls):
            if wall_clearance(wall, b.x, b.y, b.z, b.r, b.h) >= 0.0:  # cheap bound first
                continue
            s = _hull_clearance(wall, b)
            if s >= 0.0:
                continue
            ax, az = wall[0], wall[2]
            b.x -= s * ax
            b.z -= s * az
            vn = b.vx * ax + b.vz * az
            if vn < 0.0:
                b.vx -= (1.0 + WALL_RESTITUTION) * vn * ax
                b.vz -= (1.0 + WALL_RESTITUTION) * vn * az
                if -vn > EVENT_SPEED and t1 - last.get((b.id, -w - 1), -1.0) > EVENT_COOLDOWN:
                    raw.append(("wall", t1, (b,), -vn, (b.x - b.r * ax, b.y, b.z - b.r * az)))
                last[(b.id, -w - 1)] = t1
    for i in range(len(bodies)):
        for j in range(i + 1, len(bodies)):
            _contact(bodies[i], bodies[j], t1, raw, last)


def _support(b: _Body, bodies: list[_Body], t: float) -> tuple[float, _Body | None]:
    """Height b rests at (0 = floor) and the body whose flat top it is over (None = the floor)."""
    level, sup = 0.0, None
    for c in bodies:
        if c is b or c.figure or c.shape not in FLAT_TOPS or t <= c.start:
            continue
        top = c.y + c.h
        if top > level and b.y >= top - 1e-6 and math.hypot(b.x - c.x, b.z - c.z) <= c.half:
            level, sup = top, c
    return level, sup


def _contact(a: _Body, b: _Body, t: float, raw: list, last: dict) -> None:
    """Resolve the overlap of two bodies' footprints with an impulse (Newton restitution + Coulomb friction)."""
    if (a.figure and b.figure) or a.inv_mass + b.inv_mass == 0.0:
        return
    if t <= a.start or t <= b.start or a.y >= b.y + b.h - 1e-6 or b.y >= a.y + a.h - 1e-6:
        return  # one above the other: stacked, or passing over
    dx, dz = b.x - a.x, b.z - a.z
    d = math.hypot(dx, dz)
    overlap = a.rc + b.rc - d
    if overlap <= 0.0:
        return
    nx, nz = (dx / d, dz / d) if d > 1e-9 else (1.0, 0.0)
    inv = a.inv_mass + b.inv_mass
    a.x -= nx * overlap * a.inv_mass / inv
    a.z -= nz * overlap * a.inv_mass / inv
    b.x += nx * overlap * b.inv_mass / inv
    b.z += nz * overlap * b.inv_mass / inv
    rvx, rvz = b.vx - a.vx, b.vz - a.vz
    vn = rvx * nx + rvz * nz
    if vn >= 0.0:
        return
    jn = -(1.0 + BODY_RESTITUTION) * vn / inv
    tx, tz = -nz, nx
    vt = rvx * tx + rvz * tz
    jt = max(-CONTACT_FRICTION * jn, min(CONTACT_FRICTION * jn, -vt / inv))
    fx, fz = jn * nx + jt * tx, jn * nz + jt * tz  # impulse on b; -impulse on a
    a.vx -= fx * a.inv_mass
    a.vz -= fz * a.inv_mass
    b.vx += fx * b.inv_mass
    b.vz += fz * b.inv_mass
    for body, sign in ((a, 1.0), (b, -1.0)):  # torque about y of the friction impulse at the contact point
        if not body.figure and not body.round:
            rx, rz = sign * nx * body.rc, sign * nz * body.rc
            fx_b, fz_b = -sign * fx, -sign * fz
            body.spin += 2.0 * body.inv_mass * (rz * fx_b - rx * fz_b) / (body.rc * body.rc)
    key = (a.id, b.id)
    if -vn > EVENT_SPEED and t - last.get(key, -1.0) > EVENT_COOLDOWN:
        p = (a.x + nx * a.rc, max(a.y, b.y), a.z + nz * a.rc)
        raw.append(("collision", t, (a, b), -vn, p))
    last[key] = t
