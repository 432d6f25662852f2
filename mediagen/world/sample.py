"""Random scenes of the world, deterministic from a numpy Generator, honouring the held-out splits."""

from __future__ import annotations

import math

import numpy as np

from mediagen.world import figures as fg
from mediagen.world.geometry import dims, footprint_radius, object_corners, screen_box
from mediagen.world.render import render_scene
from mediagen.world.spec import (
    BACKGROUNDS,
    COLORS,
    PATTERNS,
    POSES,
    SHAPES,
    SIZES,
    Camera,
    FigureSpec,
    ObjectSpec,
    SceneSpec,
)
from mediagen.world.splits import HELDOUT_COMBOS, SPLITS, SUBJECTS, allowed_in_train

Z_RANGE = (5.0, 10.5)  # depth band where objects stand
REF_HEIGHT = 128  # placement checks are made at this image height
MARGIN_PX = 2.0  # items keep this far from the image border (at REF_HEIGHT)
MAX_OCCLUSION = 0.4  # largest share of a farther item's box hidden by a nearer one


def sample_camera(rng: np.random.Generator, jitter: bool = True) -> Camera:
    """The default camera, with small random height, tilt, pan and sideways shift when `jitter`."""
    if not jitter:
        return Camera()
    return Camera(
        height=round(float(rng.uniform(2.8, 3.2)), 3),
        pitch=round(float(rng.uniform(12.5, 15.5)), 3),
        x=round(float(rng.uniform(-0.3, 0.3)), 3),
        yaw=round(float(rng.uniform(-4.0, 4.0)), 3),
    )


def sample_object(rng: np.random.Generator, split: str = "train", pattern_prob: float = 0.15,
                  metal_prob: float = 0.4) -> ObjectSpec:
    """Random attributes (position left at the default); train objects avoid held-out combos and subjects."""
    while True:
        pattern = str(rng.choice(PATTERNS[1:])) if rng.random() < pattern_prob else "none"
        color = str(rng.choice(COLORS))
        obj = ObjectSpec(
            shape=str(rng.choice(SHAPES)),
            color=color,
            size=str(rng.choice(SIZES)),
            material="metal" if rng.random() < metal_prob else "matte",
            pattern=pattern,
            rotation=round(float(rng.uniform(0, math.pi / 2)), 4),
            pattern_color=str(rng.choice([c for c in COLORS if c != color])),
        )
        if split != "train" or allowed_in_train(obj):
            return obj


def heldout_object(rng: np.random.Generator, subject_prob: float = 0.2) -> ObjectSpec:
    """An object showing a held-out colour-shape combo, or (with subject_prob) a named subject."""
    if rng.random() < subject_prob:
        s = SUBJECTS[int(rng.integers(len(SUBJECTS)))]
        return s.object(size=str(rng.choice(SIZES)), rotation=round(float(rng.uniform(0, math.pi / 2)), 4))
    color, shape = HELDOUT_COMBOS[int(rng.integers(len(HELDOUT_COMBOS)))]
    obj = sample_object(rng, "test", pattern_prob=0.0)
    obj.color, obj.shape = color, shape
    return obj


def item_corners(item: ObjectSpec | FigureSpec) -> np.ndarray:
    """World points (N, 3) whose screen box bounds the item."""
    if isinstance(item, ObjectSpec):
        return object_corners(item)
    pts = fg.coco_array(fg.world_joints(item))  # (17, 3)
    r = (fg.HEAD_RADIUS + fg.LIMB_RADIUS) * item.height
    return np.concatenate([pts + [dx, dy, 0.0] for dx in (-r, r) for dy in (-r, r)])


def item_footprint(item: ObjectSpec | FigureSpec) -> float:
    """Radius of the item's footprint on the floor."""
    return footprint_radius(item) if isinstance(item, ObjectSpec) else 0.25 * item.height


def ref_box(cam: Camera, item, aspect: float) -> tuple[float, float, float, float] | None:
    """Screen box of an item at the reference image size (REF_HEIGHT tall)."""
    return screen_box(cam, item_corners(item), round(REF_HEIGHT * aspect), REF_HEIGHT)


def in_view(cam: Camera, item, aspect: float, margin: float = MARGIN_PX) -> bool:
    """True when the item's screen box stays `margin` pixels inside the reference image."""
    box = ref_box(cam, item, aspect)
    w = round(REF_HEIGHT * aspect)
    return box is not None and box[0] >= margin and box[1] >= margin and box[2] <= w - margin and (
        box[3] <= REF_HEIGHT - margin
    )


def _box_overlap(a, b) -> float:
    """Intersection area of two (x0, y0, x1, y1) boxes."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def fits(cam: Camera, item, placed: list, aspect: float, allow_overlap: bool = False) -> bool:
    """True when `item` is in view, clear of placed footprints and not hiding / hidden by them too much."""
    if not in_view(cam, item, aspect):
        return False
    box = ref_box(cam, item, aspect)
    for other in placed:
        gap = math.hypot(item.x - other.x, item.z - other.z) - item_footprint(item) - item_footprint(other)
        if gap < 0.12 and not allow_overlap:
            return False
        ob = ref_box(cam, other, aspect)
        far = box if item.z > other.z else ob
        area = (far[2] - far[0]) * (far[3] - far[1])
        if _box_overlap(box, ob) > MAX_OCCLUSION * area:
            return False
    return True


def place(rng: np.random.Generator, cam: Camera, item, placed: list, aspect: float,
          allow_overlap: bool = False, tries: int = 60) -> bool:
    """Move `item` to a random free spot (x, z); False when no spot was found."""
    tan_half = math.tan(math.radians(cam.fov) / 2.0) * aspect
    for _ in range(tries):
        z = float(rng.uniform(*Z_RANGE))
        reach = z * tan_half * 0.95
        item.x = round(float(cam.x + rng.uniform(-reach, reach)), 3)
        item.z = round(z, 3)
        if fits(cam, item, placed, aspect, allow_overlap):
            return True
    return False


def place_all(rng: np.random.Generator, cam: Camera, items: list, aspect: float, allow_overlap: bool = False) -> bool:
    """Place items one after the other; False as soon as one does not fit."""
    placed: list = []
    for it in items:
        if not place(rng, cam, it, placed, aspect, allow_overlap):
            return False
        placed.append(it)
    return True


def stack(rng: np.random.Generator, cam: Camera, objects: list[ObjectSpec], aspect: float) -> bool:
    """Move a smaller object onto the top face of a floor-standing cube or cylinder; False if none fits."""
    rank = {s: i for i, s in enumerate(SIZES)}
    pairs = [
        (top, base) for base in objects if base.shape in ("cube", "cylinder") and base.y == 0.0
        for top in objects if top is not base and rank[top.size] < rank[base.size] and top.y == 0.0
        and not any(o.y > 0 for o in objects)
    ]  # fmt: skip
    if not pairs:
        return False
    top, base = pairs[int(rng.integers(len(pairs)))]
    old = (top.x, top.y, top.z)
    top.x, top.z, top.y = base.x, base.z, round(base.y + dims(base)[1], 4)
    if top.shape in ("cube", "pyramid"):
        top.rotation = base.rotation if base.shape == "cube" else top.rotation
    if not in_view(cam, top, aspect):
        top.x, top.y, top.z = old
        return False
    return True


def visible_enough(spec: SceneSpec, min_visible: float) -> bool:
    """True when every object of the scene shows at least `min_visible` of its own pixels."""
    r = render_scene(spec, max(16, round(64 * spec.aspect)), 64, antialias=False)
    return all(o.visible_fraction >= min_visible for o in r.objects if o.kind == "object")


def sample_figure(rng: np.random.Generator) -> FigureSpec:
    """A figure with a random pose (slightly varied limb angles), colour and facing."""
    pose = str(rng.choice(POSES))
    base = fg.pose_angles(pose)
    angles = {k: [round(a + float(rng.normal(0, 5)), 2), round(f + float(rng.normal(0, 6)), 2)]
              for k, (a, f) in base.items()}  # fmt: skip
    facing = float(rng.choice([0.0, 0.0, 0.6, -0.6, math.pi / 2, -math.pi / 2, math.pi]))
    return FigureSpec(
        pose=pose,
        color=str(rng.choice(COLORS)),
        facing=round(facing + float(rng.normal(0, 0.15)), 4),
        height=round(float(rng.uniform(1.7, 1.9)), 3),
        angles=angles,
    )


def sample_scene(rng: np.random.Generator, n_objects: int | None = None, split: str = "train",
                 with_figure_prob: float = 0.15, allow_overlap: bool = False, aspect: float = 1.0,
                 pattern_prob: float = 0.15, metal_prob: float = 0.4, background: str | None = None,
                 jitter: bool = True, min_visible: float = 0.5, stack_prob: float = 0.12) -> SceneSpec:
    """A random scene with 1-5 objects (or n_objects) and maybe a figure; test scenes hold a held-out object.

    With `stack_prob` a smaller object is put on top of a cube or cylinder (when the scene allows).
    Every object keeps at least `min_visible` of its pixels unoccluded (checked on a 64-pixel render).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    n = int(rng.integers(1, 6)) if n_objects is None else int(n_objects)
    bg = background or str(rng.choice(BACKGROUNDS))
    with_figure = rng.random() < with_figure_prob
    for _ in range(50):
        cam = sample_camera(rng, jitter)
        objects = [sample_object(rng, split, pattern_prob, metal_prob) for _ in range(n)]
        if split == "test" and n:
            objects[int(rng.integers(n))] = heldout_object(rng)
        items: list = [sample_figure(rng)] if with_figure else []
        items += objects
        if place_all(rng, cam, items, aspect, allow_overlap):
            figs = [it for it in items if isinstance(it, FigureSpec)]
            if rng.random() < stack_prob:
                stack(rng, cam, objects, aspect)
            spec = SceneSpec(objects=objects, figures=figs, camera=cam, background=bg, aspect=aspect)
            if min_visible <= 0 or visible_enough(spec, min_visible):
                return spec
    raise RuntimeError(f"could not place {n} objects without overlap")
