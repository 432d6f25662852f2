"""Render a SceneSpec to an image plus exact ground truth (depth, instances, classes, edges, poses)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from mediagen.world import figures as fg
from mediagen.world.geometry import (
    camera_frame,
    dims,
    focal,
    footprint_radius,
    light_dir,
    object_corners,
    pixel_rays,
    project,
    screen_box,
    yaw_matrix,
)
from mediagen.world.shapes import intersect, pattern_mask, sphere_hit
from mediagen.world.spec import BACKGROUND_STYLE, COLOR_RGB, SHAPES, WALL_Z, FigureSpec, ObjectSpec, SceneSpec

SEMANTIC_CLASSES = ("sky", "wall", "floor", "person") + SHAPES
SEMANTIC_PALETTE = (  # ADE20K-like colours, one per SEMANTIC_CLASSES entry
    (6, 230, 230), (120, 120, 120), (80, 50, 50), (150, 5, 61),
    (255, 0, 102), (4, 200, 3), (204, 5, 255), (255, 184, 6), (0, 102, 200),
)  # fmt: skip
SKY, WALL, FLOOR, PERSON = 0, 1, 2, 3


@dataclass
class ObjectInfo:
    """Ground truth of one rendered object or figure (instance id = index in Render.objects + 1)."""

    id: int
    kind: str  # "object" or "figure"
    shape: str  # a shape name, or "person" for figures
    color: str
    size: str | None
    material: str | None
    pattern: str | None
    position: tuple[float, float, float]  # world (x, y, z) of the base centre
    depth: float  # camera depth of the base centre
    box: tuple[float, float, float, float] | None  # visible pixels: (x0, y0, x1, y1), x1/y1 exclusive
    center: tuple[float, float] | None  # centre of `box`
    area: int  # visible pixels
    full_area: int  # pixels covered if nothing occluded it
    height: float = 0.0  # world height of the item

    def on_top_of(self, other: ObjectInfo) -> bool:
        """True when this item rests on the top face of `other`."""
        (x, y, z), (ox, oy, oz) = self.position, other.position
        return y > 0.05 and abs(y - (oy + other.height)) < 0.03 and math.hypot(x - ox, z - oz) < 0.5 * other.height

    @property
    def visible_fraction(self) -> float:
        """Share of the object's own pixels that are visible."""
        return self.area / self.full_area if self.full_area else 0.0


@dataclass
class Render:
    """Image and aligned ground-truth maps of one scene."""

    image: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32, 0 = camera.near .. 1 = camera.far and beyond (sky = 1)
    z: np.ndarray  # (H, W) float32 camera depth in world units, inf for the sky
    instance: np.ndarray  # (H, W) int32, 0 = background, k = objects[k - 1]
    semantic: np.ndarray  # (H, W) uint8 index into SEMANTIC_CLASSES
    edges: np.ndarray  # (H, W) uint8 0/255, one-pixel lines on the nearer side of discontinuities
    normals: np.ndarray  # (H, W, 3) float32 world-space unit normals (sky: 0)
    objects: list[ObjectInfo]
    keypoints: np.ndarray  # (F, 17, 3) float32 COCO (x, y, v); v: 0 outside, 1 hidden, 2 visible
    spec: SceneSpec = field(repr=False)

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return self.image.shape[0]

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return self.image.shape[1]

    def mask(self, instance_id: int) -> np.ndarray:
        """Boolean mask (H, W) of one instance."""
        return self.instance == instance_id

    @cached_property
    def seg_image(self) -> np.ndarray:
        """Semantic map coloured with SEMANTIC_PALETTE, (H, W, 3) uint8."""
        return np.asarray(SEMANTIC_PALETTE, dtype=np.uint8)[self.semantic]

    @cached_property
    def depth_image(self) -> np.ndarray:
        """Inverse depth normalised per image (near = white, sky = black), (H, W, 3) uint8."""
        finite = np.isfinite(self.z)
        if not finite.any():
            return np.zeros(self.image.shape, dtype=np.uint8)
        disp = np.where(finite, 1.0 / np.maximum(self.z, 1e-6), 0.0)  # (H, W)
        lo, hi = disp[finite].min(), disp[finite].max()
        v = np.where(finite, 0.1 + 0.9 * (disp - lo) / max(hi - lo, 1e-9), 0.0)
        return np.repeat((v * 255.0 + 0.5).astype(np.uint8)[..., None], 3, axis=2)

    @cached_property
    def normal_image(self) -> np.ndarray:
        """Camera-space normals (x right, y up, z to the camera) as RGB, (H, W, 3) uint8."""
        _, rot = camera_frame(self.spec.camera)
        n = self.normals @ rot.T * np.array([1.0, 1.0, -1.0])  # (H, W, 3)
        return np.clip((n * 0.5 + 0.5) * 255.0 + 0.5, 0, 255).astype(np.uint8)

    @cached_property
    def pose_image(self) -> np.ndarray:
        """OpenPose-style drawing of every figure: coloured limbs on black, (H, W, 3) uint8."""
        return draw_openpose(self.keypoints, self.width, self.height)

    @property
    def keypoints_openpose(self) -> np.ndarray:
        """Keypoints in OpenPose-18 order, (F, 18, 3)."""
        return fg.to_openpose(self.keypoints)


@dataclass
class _Canvas:
    """Mutable frame buffers shared by the drawing functions of one render."""

    rgb: np.ndarray  # (H, W, 3) float32 in 0..1
    z: np.ndarray  # (H, W) float64 camera depth
    inst: np.ndarray  # (H, W) int32
    sem: np.ndarray  # (H, W) uint8
    part: np.ndarray  # (H, W) int32: face / pattern id inside an instance
    normal: np.ndarray  # (H, W, 3) float32
    rays: np.ndarray  # (H, W, 3) world ray per pixel
    origin: np.ndarray  # (3,)
    style: tuple

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W)."""
        return self.z.shape


def render_scene(spec: SceneSpec, width: int = 128, height: int = 128, antialias: bool = True) -> Render:
    """Render `spec` at width x height; every map is aligned with the image."""
    cv = _background(spec, width, height)
    _draw_shadows(cv, spec)
    cam = spec.camera
    order = _far_to_near(spec)
    full = {}
    for kind, idx in order:
        if kind == "object":
            full[idx + 1] = _draw_object(cv, spec.objects[idx], idx + 1, cam)
        else:
            inst = len(spec.objects) + idx + 1
            full[inst] = _draw_figure(cv, spec.figures[idx], inst, cam)
    edges = _edges(cv.inst, cv.sem, cv.part, cv.z)
    rgb = _antialias(cv.rgb, edges) if antialias else cv.rgb
    image = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    z = cv.z.astype(np.float32)
    depth = np.clip((z - cam.near) / (cam.far - cam.near), 0.0, 1.0).astype(np.float32)
    objects = _object_infos(spec, cv, full, width, height)
    keypoints = _keypoints(spec, cv, width, height)
    return Render(image, depth, z, cv.inst, cv.sem, edges, cv.normal, objects, keypoints, spec)


def _far_to_near(spec: SceneSpec) -> list[tuple[str, int]]:
    """Drawing order (kind, index) sorted by decreasing camera depth of the base centre."""
    items = [("object", i, o.x, o.y, o.z) for i, o in enumerate(spec.objects)]
    items += [("figure", i, f.x, 0.0, f.z) for i, f in enumerate(spec.figures)]
    if not items:
        return []
    _, z = project(spec.camera, np.array([[x, y, zz] for _, _, x, y, zz in items]), 2, 2)
    return [(k, i) for (k, i, *_), _ in sorted(zip(items, z), key=lambda t: -t[1])]


# ----------------------------------------------------------------------------- background


def _srgb(rgb) -> np.ndarray:
    """Colour tuple as floats in 0..1, (3,)."""
    return np.asarray(rgb, dtype=np.float32) / 255.0


def _background(spec: SceneSpec, w: int, h: int) -> _Canvas:
    """Canvas holding the sky or wall and the floor, with their depth and classes."""
    kind, top, bottom, floor = (BACKGROUND_STYLE[spec.background][0],) + tuple(
        _srgb(c) for c in BACKGROUND_STYLE[spec.background][1:]
    )
    origin, _ = camera_frame(spec.camera)
    rays = pixel_rays(spec.camera, w, h)  # (H, W, 3)
    dy = rays[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(dy < -1e-9, -origin[1] / dy, np.inf)  # (H, W)
        t_wall = np.where(rays[..., 2] > 1e-9, (WALL_Z - origin[2]) / rays[..., 2], np.inf)
    is_wall = (t_wall < t_floor) if kind == "wall" else np.zeros((h, w), dtype=bool)
    is_floor = np.isfinite(t_floor) & ~is_wall
    z = np.where(is_floor, t_floor, np.where(is_wall, t_wall, np.inf))
    sem = np.where(is_floor, FLOOR, WALL if kind == "wall" else SKY).astype(np.uint8)
    if kind == "wall":
        y_wall = origin[1] + t_wall * dy  # (H, W) height on the wall
        s = np.clip(y_wall / 7.0, 0.0, 1.0)[..., None]
    else:
        elev = dy / np.linalg.norm(rays, axis=-1)
        s = np.clip(elev / 0.3, 0.0, 1.0)[..., None] ** 0.8
    rgb = (bottom * (1 - s) + top * s).astype(np.float32)  # (H, W, 3)
    fog = (1.0 - np.exp(-np.maximum(np.where(is_floor, z, 0.0) - 5.0, 0.0) / 28.0))[..., None]
    floor_rgb = floor * (0.95 - 0.1 * fog) * (1 - 0.5 * fog) + bottom * 0.5 * fog
    rgb = np.where(is_floor[..., None], floor_rgb, rgb).astype(np.float32)
    normal = np.zeros((h, w, 3), dtype=np.float32)
    normal[is_floor] = (0.0, 1.0, 0.0)
    normal[is_wall] = (0.0, 0.0, -1.0)
    part = np.zeros((h, w), dtype=np.int32)
    inst = np.zeros((h, w), dtype=np.int32)
    return _Canvas(rgb, z, inst, sem, part, normal, rays, origin, (kind, top, bottom, floor))


def _shadow_casters(spec: SceneSpec) -> list[tuple[float, ...]]:
    """(x, z, y0, y1, r0, r1, contact): tapered vertical capsules whose floor shadows approximate each item.

    `contact` is the radius of the darkened ring where an item touches the floor (0 when lifted).
    """
    out = []
    for o in spec.objects:
        half, h = dims(o)
        touch = half * (0.55 if o.shape == "sphere" else 0.9) if o.y < 0.05 else 0.0
        if o.shape == "sphere":
            out.append((o.x, o.z, o.y + 0.45 * half, o.y + 1.55 * half, 0.9 * half, 0.9 * half, touch))
        elif o.shape in ("cone", "pyramid"):
            out.append((o.x, o.z, o.y, o.y + h, footprint_radius(o) * 0.9, 0.05, touch))
        else:
            r = footprint_radius(o) * 0.92
            out.append((o.x, o.z, o.y, o.y + h, r, r, touch))
    for f in spec.figures:
        out.append((f.x, f.z, 0.1 * f.height, 0.95 * f.height, 0.11 * f.height, 0.08 * f.height, 0.0))
    return out


def _draw_shadows(cv: _Canvas, spec: SceneSpec) -> None:
    """Darken floor pixels under soft shadows cast by the fixed light."""
    h, w = cv.shape
    lt = light_dir()
    slope = -np.array([lt[0], lt[2]]) / lt[1]  # floor offset per unit height
    shade = np.ones((h, w), dtype=np.float32)
    for x, z, y0, y1, r0, r1, touch in _shadow_casters(spec):
        a = np.array([x, z]) + slope * y0
        b = np.array([x, z]) + slope * y1
        pad = max(r0, r1) + 0.35
        lo, hi = np.minimum(a, b) - pad, np.maximum(a, b) + pad
        quad = np.array([[lo[0], 0, lo[1]], [hi[0], 0, lo[1]], [lo[0], 0, hi[1]], [hi[0], 0, hi[1]]])
        box = _int_box(screen_box(spec.camera, quad, w, h), w, h)
        if box is None:
            continue
        i0, i1, j0, j1 = box
        t = cv.z[i0:i1, j0:j1]
        floor = cv.sem[i0:i1, j0:j1] == FLOOR
        gp = cv.origin[[0, 2]] + t[..., None] * cv.rays[i0:i1, j0:j1][..., [0, 2]]  # (h, w, 2) floor x, z
        ab = b - a
        s = np.clip(((gp - a) @ ab) / max(float(ab @ ab), 1e-9), 0.0, 1.0)  # (h, w)
        dist = np.linalg.norm(gp - (a + s[..., None] * ab), axis=-1)
        rad = r0 + (r1 - r0) * s
        soft = 0.08 + 0.12 * s
        cover = np.clip(0.5 - (dist - rad) / (2 * soft), 0.0, 1.0)
        ring = np.maximum(np.hypot(gp[..., 0] - x, gp[..., 1] - z) - touch, 0.0)
        contact = np.exp(-ring / 0.07) * 0.22 if touch > 0 else 0.0
        dark = np.where(floor, 1.0 - 0.42 * cover - contact, 1.0)
        shade[i0:i1, j0:j1] *= np.clip(dark, 0.35, 1.0).astype(np.float32)
    cv.rgb *= shade[..., None]


def _int_box(box, w: int, h: int, pad: int = 1) -> tuple[int, int, int, int] | None:
    """Pixel slice bounds (i0, i1, j0, j1) of a float screen box, clipped; None when empty."""
    if box is None:
        return None
    x0, y0, x1, y1 = box
    j0, j1 = max(int(np.floor(x0)) - pad, 0), min(int(np.ceil(x1)) + pad, w)
    i0, i1 = max(int(np.floor(y0)) - pad, 0), min(int(np.ceil(y1)) + pad, h)
    if i0 >= i1 or j0 >= j1:
        return None
    return i0, i1, j0, j1


# ----------------------------------------------------------------------------- shading


def _env(cv: _Canvas, r: np.ndarray) -> np.ndarray:
    """Colour (Q, 3) seen along reflected directions r (Q, 3): sky/wall above, floor below."""
    _, top, bottom, floor = cv.style
    up = np.clip(r[:, 1:2] / 0.5, 0.0, 1.0)
    sky = bottom * (1 - up) + top * up
    return np.where(r[:, 1:2] > 0, sky, floor * 0.8)


def _shade(cv: _Canvas, albedo: np.ndarray, n: np.ndarray, view: np.ndarray, metal: bool) -> np.ndarray:
    """Lit colour (Q, 3) from albedo (Q, 3), unit normals (Q, 3) and unit directions to the eye (Q, 3)."""
    lt = light_dir()
    ndl = np.clip(n @ lt, 0.0, 1.0)[:, None]
    hv = lt[None, :] + view
    hv /= np.linalg.norm(hv, axis=1, keepdims=True)
    ndh = np.clip(np.einsum("qi,qi->q", n, hv), 0.0, 1.0)[:, None]
    up = 0.5 + 0.5 * n[:, 1:2]
    if not metal:
        return albedo * (0.5 + 0.45 * ndl + 0.05 * up) + 0.1 * ndh**24
    ndv = np.einsum("qi,qi->q", n, view)[:, None]
    refl = 2.0 * ndv * n - view
    return albedo * (0.5 + 0.32 * ndl) + 0.16 * albedo * _env(cv, refl) + 0.9 * ndh**160


def _write(cv: _Canvas, rows, cols, t, rgb, n, inst: int, sem: int, part) -> None:
    """Store the winning fragments of one item into the canvas."""
    cv.z[rows, cols] = t
    cv.rgb[rows, cols] = rgb
    cv.normal[rows, cols] = n
    cv.inst[rows, cols] = inst
    cv.sem[rows, cols] = sem
    cv.part[rows, cols] = part


# ----------------------------------------------------------------------------- objects


def _draw_object(cv: _Canvas, obj: ObjectSpec, inst: int, cam) -> int:
    """Ray-cast one solid over its screen box with a depth test; returns its unoccluded pixel count."""
    h, w = cv.shape
    box = _int_box(screen_box(cam, object_corners(obj), w, h), w, h)
    if box is None:
        return 0
    i0, i1, j0, j1 = box
    rot = yaw_matrix(obj.rotation)  # local -> world
    pos = np.array([obj.x, obj.y, obj.z])
    d = cv.rays[i0:i1, j0:j1].reshape(-1, 3)  # (P, 3) world
    o_l = (cv.origin - pos) @ rot  # world -> local
    d_l = d @ rot
    t, face, n_l = intersect(obj, o_l, d_l)  # (P,), (P,), (P, 3)
    hit = np.isfinite(t)
    win = hit & (t < cv.z[i0:i1, j0:j1].ravel())
    idx = np.flatnonzero(win)
    if idx.size:
        t, face, n_l, d = t[idx], face[idx], n_l[idx], d[idx]
        p_l = o_l + t[:, None] * d_l[idx]  # (Q, 3) local hit points
        pat = pattern_mask(obj, p_l, face, n_l)
        albedo = np.where(pat[:, None], _srgb(COLOR_RGB[obj.pattern_color]), _srgb(COLOR_RGB[obj.color]))
        n = n_l @ rot.T  # (Q, 3) world
        view = -d / np.linalg.norm(d, axis=1, keepdims=True)
        rgb = _shade(cv, albedo, n, view, obj.material == "metal")
        rgb *= (1.0 - 0.22 * np.exp(-(p_l[:, 1] + obj.y) / (0.18 * obj.radius)))[:, None]  # contact darkening
        rows, cols = i0 + idx // (j1 - j0), j0 + idx % (j1 - j0)
        sem = SEMANTIC_CLASSES.index(obj.shape)
        _write(cv, rows, cols, t, rgb, n, inst, sem, face * 2 + pat)
    return int(hit.sum())


# ----------------------------------------------------------------------------- figures


def _draw_figure(cv: _Canvas, fig: FigureSpec, inst: int, cam) -> int:
    """Draw a stick figure: shaded capsules for limbs and torso, a ray-cast sphere for the head."""
    h, w = cv.shape
    joints = fg.world_joints(fig)
    names = list(joints)
    uv, z = project(cam, np.stack([joints[k] for k in names]), w, h)
    at = {k: (uv[i], z[i]) for i, k in enumerate(names)}
    f = focal(cam, h)
    albedo = _srgb(COLOR_RGB[fig.color])
    covered = 0
    for part, (a, b, scale) in enumerate(fg.LIMBS):
        r = fg.LIMB_RADIUS * fig.height * scale
        covered += _draw_capsule(cv, at[a], at[b], r, f, albedo, inst, part + 1, cam)
    covered += _draw_head(cv, joints["head"], fg.HEAD_RADIUS * fig.height, albedo, inst, cam)
    return covered


def _draw_capsule(cv: _Canvas, a, b, r: float, f: float, albedo, inst: int, part: int, cam) -> int:
    """One limb as a screen-space capsule with a round cross-section; returns covered pixels."""
    h, w = cv.shape
    (pa, za), (pb, zb) = a, b
    if min(za, zb) < 0.1:
        return 0
    ra, rb = r * f / za, r * f / zb
    rmax = max(ra, rb)
    lo, hi = np.minimum(pa, pb) - rmax, np.maximum(pa, pb) + rmax
    box = _int_box((lo[0], lo[1], hi[0], hi[1]), w, h)
    if box is None:
        return 0
    i0, i1, j0, j1 = box
    jj, ii = np.meshgrid(np.arange(j0, j1) + 0.5, np.arange(i0, i1) + 0.5)
    p = np.stack([jj.ravel(), ii.ravel()], axis=1)  # (P, 2)
    ab = pb - pa
    s = np.clip(((p - pa) @ ab) / max(float(ab @ ab), 1e-9), 0.0, 1.0)  # (P,)
    off = p - (pa + s[:, None] * ab)
    dist = np.linalg.norm(off, axis=1)
    rad = ra + (rb - ra) * s
    inside = dist < rad
    q = np.clip(dist / np.maximum(rad, 1e-9), 0.0, 1.0)
    bulge = np.sqrt(1.0 - q * q)
    depth = za + (zb - za) * s - r * bulge
    win = inside & (depth < cv.z[i0:i1, j0:j1].ravel())
    idx = np.flatnonzero(win)
    if idx.size:
        _, rot = camera_frame(cam)
        o = off[idx] / np.maximum(rad[idx], 1e-9)[:, None]
        n_cam = np.stack([o[:, 0], -o[:, 1], -bulge[idx]], axis=1)  # (Q, 3) x right, y up, z forward
        n = n_cam @ rot
        n /= np.linalg.norm(n, axis=1, keepdims=True)
        d = cv.rays[i0:i1, j0:j1].reshape(-1, 3)[idx]
        view = -d / np.linalg.norm(d, axis=1, keepdims=True)
        rgb = _shade(cv, np.broadcast_to(albedo, n.shape), n, view, False)
        rows, cols = i0 + idx // (j1 - j0), j0 + idx % (j1 - j0)
        _write(cv, rows, cols, depth[idx], rgb, n, inst, PERSON, 64 + part)
    return int(inside.sum())


def _draw_head(cv: _Canvas, centre: np.ndarray, r: float, albedo, inst: int, cam) -> int:
    """Ray-cast the head sphere; returns covered pixels."""
    h, w = cv.shape
    pts = centre[None, :] + r * np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    box = _int_box(screen_box(cam, pts, w, h), w, h)
    if box is None:
        return 0
    i0, i1, j0, j1 = box
    d = cv.rays[i0:i1, j0:j1].reshape(-1, 3)
    t, _, n = sphere_hit(cv.origin - centre, d, r)
    hit = np.isfinite(t)
    idx = np.flatnonzero(hit & (t < cv.z[i0:i1, j0:j1].ravel()))
    if idx.size:
        view = -d[idx] / np.linalg.norm(d[idx], axis=1, keepdims=True)
        rgb = _shade(cv, np.broadcast_to(albedo, (idx.size, 3)), n[idx], view, False)
        rows, cols = i0 + idx // (j1 - j0), j0 + idx % (j1 - j0)
        _write(cv, rows, cols, t[idx], rgb, n[idx], inst, PERSON, 63)
    return int(hit.sum())


# ----------------------------------------------------------------------------- ground truth


def _edges(inst: np.ndarray, sem: np.ndarray, part: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Thin edge map (H, W) uint8: instance/class/face changes and depth jumps, on the nearer pixel."""
    e = np.zeros(inst.shape, dtype=bool)
    for ax in (0, 1):
        a = [slice(None)] * 2
        b = [slice(None)] * 2
        a[ax], b[ax] = slice(None, -1), slice(1, None)
        a, b = tuple(a), tuple(b)
        za, zb = z[a], z[b]
        with np.errstate(invalid="ignore"):
            jump = (np.abs(za - zb) > 0.012 * np.minimum(za, zb)) & (inst[a] > 0)
        diff = (inst[a] != inst[b]) | (sem[a] != sem[b]) | (part[a] != part[b]) | jump
        first_near = za <= zb
        e[a] |= diff & first_near
        e[b] |= diff & ~first_near
    return (e * 255).astype(np.uint8)


def _antialias(rgb: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Soften pixels next to edges with a small binomial blur, (H, W, 3)."""
    near = edges > 0
    grow = near.copy()
    grow[1:] |= near[:-1]
    grow[:-1] |= near[1:]
    grow[:, 1:] |= near[:, :-1]
    grow[:, :-1] |= near[:, 1:]
    pad = np.pad(rgb, ((1, 1), (1, 1), (0, 0)), mode="edge")
    v = (pad[:-2] + 2 * pad[1:-1] + pad[2:]) / 4.0  # (H, W + 2, 3)
    blur = (v[:, :-2] + 2 * v[:, 1:-1] + v[:, 2:]) / 4.0  # (H, W, 3)
    return np.where(grow[..., None], 0.5 * rgb + 0.5 * blur, rgb)


def _object_infos(spec: SceneSpec, cv: _Canvas, full: dict[int, int], w: int, h: int) -> list[ObjectInfo]:
    """Per-instance ground truth from the instance map."""
    items = [("object", o) for o in spec.objects] + [("figure", f) for f in spec.figures]
    base = np.array([[o.x, getattr(o, "y", 0.0), o.z] for _, o in items]).reshape(-1, 3)
    _, depth = project(spec.camera, base, w, h) if items else (None, [])
    ids = cv.inst.ravel()
    counts = np.bincount(ids, minlength=len(items) + 1)
    out = []
    for k, (kind, o) in enumerate(items):
        inst = k + 1
        box = center = None
        if counts[inst]:
            rows = np.flatnonzero((cv.inst == inst).any(axis=1))
            cols = np.flatnonzero((cv.inst == inst).any(axis=0))
            box = (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
            center = ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)
        is_obj = kind == "object"
        out.append(
            ObjectInfo(
                id=inst,
                kind=kind,
                shape=o.shape if is_obj else "person",
                color=o.color,
                size=o.size if is_obj else None,
                material=o.material if is_obj else None,
                pattern=o.pattern if is_obj else None,
                position=tuple(float(v) for v in base[k]),
                depth=float(depth[k]),
                box=box,
                center=center,
                area=int(counts[inst]),
                full_area=int(full.get(inst, 0)),
                height=float(dims(o)[1] if is_obj else o.height),
            )
        )
    return out


def _keypoints(spec: SceneSpec, cv: _Canvas, w: int, h: int) -> np.ndarray:
    """COCO keypoints (F, 17, 3): pixel x, y and visibility from the depth buffer."""
    out = np.zeros((len(spec.figures), 17, 3), dtype=np.float32)
    for k, fig in enumerate(spec.figures):
        pts = fg.coco_array(fg.world_joints(fig))  # (17, 3)
        uv, z = project(spec.camera, pts, w, h)
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h) & (z > 0)
        ii = np.clip(uv[:, 1].astype(int), 0, h - 1)
        jj = np.clip(uv[:, 0].astype(int), 0, w - 1)
        tol = np.full(17, 2.6 * fg.LIMB_RADIUS * fig.height)
        tol[:5] = 0.35 * fg.HEAD_RADIUS * fig.height
        seen = z <= cv.z[ii, jj] + tol
        out[k, :, :2] = uv
        out[k, :, 2] = np.where(inside, np.where(seen, 2, 1), 0)
    return out


def draw_openpose(keypoints: np.ndarray, width: int, height: int) -> np.ndarray:
    """OpenPose-18 drawing (H, W, 3) uint8 of COCO keypoints (F, 17, 3); hidden face points are left out."""
    img = np.zeros((height, width, 3), dtype=np.float32)
    op = fg.to_openpose(keypoints)  # (F, 18, 3)
    scale = min(width, height) / 512.0
    stick, dot = max(1.3, 4.0 * scale), max(1.6, 4.0 * scale)
    for person in op:
        show = person[:, 2] >= 1
        show[[0, 14, 15, 16, 17]] &= person[[0, 14, 15, 16, 17], 2] >= 2
        for i, (a, b) in enumerate(fg.OPENPOSE_LIMBS):
            if show[a] and show[b]:
                color = np.array(fg.OPENPOSE_COLORS[i], dtype=np.float32) * 0.6 / 255.0
                _stroke(img, person[a, :2], person[b, :2], stick, color)
        for k in np.flatnonzero(show):
            _stroke(img, person[k, :2], person[k, :2], dot, np.array(fg.OPENPOSE_COLORS[k]) / 255.0)
    return (img * 255.0 + 0.5).astype(np.uint8)


def _stroke(img: np.ndarray, a: np.ndarray, b: np.ndarray, r: float, color: np.ndarray) -> None:
    """Paint a flat capsule of radius r (pixels) from a to b into img (H, W, 3)."""
    h, w = img.shape[:2]
    box = _int_box((min(a[0], b[0]) - r, min(a[1], b[1]) - r, max(a[0], b[0]) + r, max(a[1], b[1]) + r), w, h)
    if box is None:
        return
    i0, i1, j0, j1 = box
    jj, ii = np.meshgrid(np.arange(j0, j1) + 0.5, np.arange(i0, i1) + 0.5)  # (h, w)
    ab = b - a
    s = np.clip(((jj - a[0]) * ab[0] + (ii - a[1]) * ab[1]) / max(float(ab @ ab), 1e-9), 0.0, 1.0)
    d2 = (jj - a[0] - s * ab[0]) ** 2 + (ii - a[1] - s * ab[1]) ** 2
    img[i0:i1, j0:j1][d2 <= r * r] = color
