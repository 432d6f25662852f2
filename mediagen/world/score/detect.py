"""Find the world's objects in an image by analysis alone: background model, colour segmentation, shapes.

Pipeline (no access to any renderer ground truth of the image being scored):
1. background: per-row colour candidates from the left and right border strips (the world's sky, wall and
   floor are constant along a row), with a vertical tolerance of one row for slightly tilted horizons;
2. foreground: pixels far from every background candidate that are not a darker copy of one (cast shadows
   keep the floor's chromaticity); tolerances grow with the noise measured on the background; a shadow-like
   blob that touches no caster and not the frame is a gray solid with its own shadow (on a neutral floor soft
   edges and noise hide the small colour offset between the two), and its regions join into one;
3. colour names in CIELAB: the nearest shaded palette colour (palette colour times a brightness factor);
4. regions: foreground blobs split at sizeable single-colour cores grown back over the blob; a region of
   one colour holding several objects is cut along the straight line through its concavities that leaves
   the most convex parts (convex solids have convex silhouettes; a concavity another region or, for a white
   or gray region, a shadow-like pixel may fill proves nothing); nearby regions one palette colour explains
   (lit and shaded faces) or thin anti-aliased fringes merge back, and so do the pieces of a pattern; each
   region then takes the pixels inside its convex hull that may be its own;
5. soft edges (a decoder's blur, resampling, compression): each region's core drops the blurred rim at the
   half-contrast level between the local background and the region's own colour; a thin region whose
   colours blend the background and a touching region is that region's rim, and a region too faint
   against the background is a compression ripple: both are dropped;
6. shapes: silhouette, shading (steps, ramps, flat faces) and contact features of each core fed to a small
   perceptron (`shape_model.json`, refit with `python -m mediagen.world.score.fit`, which also learns from
   degraded copies of the renders).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mediagen.errors import RequestError
from mediagen.world.spec import COLOR_RGB, SHAPES

COLOR_NAMES = tuple(COLOR_RGB)
SHAPE_CLASSES = SHAPES + ("person",)  # what the shape classifier names
SHADE_LEVELS = np.linspace(0.42, 1.2, 14)  # brightness factors tried when naming a colour
NEUTRAL_INDEX = (COLOR_NAMES.index("white"), COLOR_NAMES.index("gray"))
MODEL_FILE = Path(__file__).resolve().parent / "shape_model.json"


@dataclass(frozen=True)
class DetectSettings:
    """Tolerances of the detector (pixels values are 0..255)."""

    border: float = 1 / 16  # width of each border strip used for the background, fraction of the width
    min_tol: float = 4.0  # smallest colour distance from the background that counts as foreground
    noise_tol: float = 5.0  # tolerance in units of the measured background noise
    shadow_min: float = 0.12  # darkest shadow factor (cast shadows multiply the floor colour)
    shadow_tol: float = 0.004  # largest chromaticity change of a shadow, relative to its brightness
    shadow_base: float = 0.6  # plus this absolute colour error (rounding)
    min_area: float = 1.5e-3  # smallest region kept, fraction of the image area (25 pixels at 128 x 128)
    min_side: int = 4  # smallest region width and height in pixels
    seed_ratio: float = 0.04  # a colour's core must cover this share of its blob to start a region
    split_solidity: float = 0.985  # regions below this solidity are tried for a split in two
    merge_solidity: float = 0.9  # touching regions of one colour merge when their union is this convex
    merge_de: float = 6.0  # touching regions that one palette colour explains within this CIELAB distance merge
    fleck_ratio: float = 0.15  # ... always when the smaller is below this share of the larger
    split_depth: float = 0.06  # a concavity this deep (times the square root of the area) may start a cut
    split_gain: float = 0.3  # a cut must remove this share of the region's non-convexity (hull area - area) ...
    split_gain_px: float = 0.5  # ... and at least this many pixels times the square root of the area
    rim_depth: int = 3  # a region's pixels this close to its edge are kept only above half the local contrast
    rim_window: int = 3  # radius of the window the local object and background colours are taken from
    rim_contrast: float = 8.0  # ... where the two colours differ by at least this much
    min_contrast: float = 12.0  # regions whose median distance from the background is below this are dropped
    fringe_core: float = 0.1  # a region with at most this share left after two erosions may be a blurred rim ...
    fringe_tol: float = 0.2  # ... when its colours blend background and a touching region's within this share
    fringe_alpha: float = 0.7  # ... and lie at most this far (median) from the background towards that region
    shadow_floor: float = 0.52  # a cast shadow away from its caster's base leaves the floor brighter (single: 0.58)
    dark_share: float = 0.05  # a shadow-like blob with no caster needs this share darker than that to be a solid
    fringe_hug: float = 0.7  # ... and this share of it lies within two pixels of that region (a limb sticks out)


@dataclass
class Detection:
    """One object found in an image."""

    shape: str
    color: str
    box: tuple[float, float, float, float]  # (x0, y0, x1, y1), x1/y1 exclusive
    area: int
    mask: np.ndarray = field(repr=False)  # (H, W) bool
    shape_probs: dict[str, float] = field(default_factory=dict)
    color_share: float = 1.0  # share of the region's pixels carrying its colour name

    @property
    def center(self) -> tuple[float, float]:
        """Centre of the box (x, y)."""
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)

    @property
    def confidence(self) -> float:
        """Probability of the chosen shape."""
        return float(self.shape_probs.get(self.shape, 0.0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (no mask)."""
        return {
            "shape": self.shape,
            "color": self.color,
            "box": [round(v, 1) for v in self.box],
            "area": self.area,
            "confidence": round(self.confidence, 3),
        }


@dataclass
class Analysis:
    """Intermediate maps of one image, kept for the edit and control scorers."""

    image: np.ndarray  # (H, W, 3) float64 0..255
    background: np.ndarray  # (K, H, 3) per-row background colour candidates (0 = best estimate)
    noise: float  # robust spread of background pixels around the row model
    foreground: np.ndarray  # (H, W) bool
    labels: np.ndarray  # (H, W) int, colour index per pixel (-1 = background)
    regions: np.ndarray  # (H, W) int, 0 = background, k = detections[k - 1]
    detections: list[Detection]


# ----------------------------------------------------------------------------- colour


def to_array(image: Any) -> np.ndarray:
    """An image (PIL, array (H, W, 3) uint8 or float 0..255) as float64 (H, W, 3)."""
    a = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] < 3:
        raise RequestError(f"expected an RGB image (H, W, 3), got an array of shape {a.shape}: convert it to RGB")
    return a[..., :3].astype(np.float64)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB values 0..255, (..., 3) -> (..., 3)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


def _shaded_palette_lab() -> tuple[np.ndarray, np.ndarray]:
    """Lab of every palette colour at every shade level (C*K, 3) and the colour index of each row."""
    pal = np.array(list(COLOR_RGB.values()), dtype=np.float64)  # (C, 3)
    shaded = np.clip(pal[:, None, :] * SHADE_LEVELS[None, :, None], 0, 255)  # (C, K, 3)
    return srgb_to_lab(shaded).reshape(-1, 3), np.repeat(np.arange(len(pal)), len(SHADE_LEVELS))


def name_colors(pixels: np.ndarray) -> np.ndarray:
    """Palette index (N,) of pixels (N, 3) 0..255: nearest shaded palette colour in CIELAB (CIE76)."""
    lab = srgb_to_lab(np.asarray(pixels, dtype=np.float64).reshape(-1, 3))  # (N, 3)
    ref, owner = _shaded_palette_lab()
    d = ((lab[:, None, :] - ref[None]) ** 2).sum(-1)  # (N, C*K)
    return owner[np.argmin(d, axis=1)]


def dominant_color(pixels: np.ndarray, chromatic_share: float = 0.3) -> tuple[str, float]:
    """Colour name of a region's pixels (N, 3) and its share: the most frequent chromatic name when it
    covers `chromatic_share` of the pixels (highlights and reflections read white or gray), else the
    most frequent name."""
    idx = name_colors(np.asarray(pixels, dtype=np.float64).reshape(-1, 3))
    counts = np.bincount(idx, minlength=len(COLOR_NAMES))
    total = max(int(counts.sum()), 1)
    chroma = [i for i, c in enumerate(COLOR_NAMES) if c not in ("white", "gray")]
    best = max(chroma, key=lambda i: counts[i])
    k = best if counts[best] >= chromatic_share * total else int(counts.argmax())
    return COLOR_NAMES[k], float(counts[k] / total)


# ----------------------------------------------------------------------------- background


def estimate_background(img: np.ndarray, s: DetectSettings) -> tuple[np.ndarray, float]:
    """Background colour candidates per row (K, H, 3) from the border strips, and the background noise level.

    Candidate 0 is the best single estimate. Where the left and right strips disagree (an object or a
    shadow covers one, or a tilted horizon crosses the row) the candidates are the nearest agreeing rows
    above and below, their linear interpolation, and each strip that lies close to one of those.
    """
    w = img.shape[1]
    b = max(2, round(w * s.border))
    left = np.median(img[:, :b], axis=1)  # (H, 3)
    right = np.median(img[:, w - b :], axis=1)
    gap = np.linalg.norm(left - right, axis=1)  # (H,)
    agree = gap < max(6.0, np.median(gap) * 3.0)
    mid = (left + right) / 2.0
    cands = [mid.copy(), mid.copy(), mid.copy(), left.copy(), right.copy()]
    if agree.any() and not agree.all():
        rows = np.flatnonzero(agree)
        bad = np.flatnonzero(~agree)
        up = rows[np.clip(np.searchsorted(rows, bad) - 1, 0, len(rows) - 1)]
        down = rows[np.clip(np.searchsorted(rows, bad), 0, len(rows) - 1)]
        interp = np.stack([np.interp(bad, rows, mid[rows, c]) for c in range(3)], axis=1)  # (B, 3)
        cands[0][bad], cands[1][bad], cands[2][bad] = interp, mid[up], mid[down]
        ref = np.stack([interp, mid[up], mid[down]])  # (3, B, 3)
        for k, strip in ((3, left), (4, right)):
            near = np.linalg.norm(strip[bad][None] - ref, axis=2).min(axis=0) < 8.0
            cands[k][bad] = np.where(near[:, None], strip[bad], interp)
            cands[0][bad] = np.where(near[:, None], strip[bad], cands[0][bad])
    strips = np.concatenate([img[:, :b], img[:, w - b :]], axis=1)  # (H, 2b, 3)
    dev = np.linalg.norm(strips - mid[:, None, :], axis=2)
    noise = float(np.median(dev[agree])) if agree.any() else float(np.median(dev))
    return np.stack(cands), noise


def background_masks(img: np.ndarray, bgs: np.ndarray, noise: float, s: DetectSettings) -> tuple[np.ndarray, np.ndarray]:
    """Foreground (H, W): pixels explained neither by a row background candidate (+-1 row) nor by a shadow
    on one; and shade (H, W): the pixels only a shadow explains (cast shadows, but also the shaded or
    mirroring faces of a white or gray solid on a neutral floor: colour alone cannot tell them apart)."""
    h = img.shape[0]
    tol = max(s.min_tol, s.noise_tol * noise)
    noise_tol = s.shadow_base + s.noise_tol * noise
    near_any = np.zeros(img.shape[:2], dtype=bool)
    shadow_any = np.zeros(img.shape[:2], dtype=bool)
    for bg in bgs:
        for off in (-1, 0, 1):
            b = bg[np.clip(np.arange(h) + off, 0, h - 1)][:, None, :]  # (H, 1, 3)
            near_any |= np.linalg.norm(img - b, axis=2) < tol
            bb = np.maximum((b * b).sum(-1), 1.0)  # (H, 1)
            k = (img * b).sum(-1) / bb  # (H, W) shadow factor
            resid = np.linalg.norm(img - k[..., None] * b, axis=2)
            shadow_any |= (k >= s.shadow_min) & (k <= 1.0) & (resid < s.shadow_tol * np.sqrt(bb) * k + noise_tol)
    return ~(near_any | shadow_any), shadow_any & ~near_any


def foreground_mask(img: np.ndarray, bgs: np.ndarray, noise: float, s: DetectSettings) -> np.ndarray:
    """Pixels (H, W) explained neither by a row background candidate (+-1 row) nor by a shadow on one."""
    return background_masks(img, bgs, noise, s)[0]


# ----------------------------------------------------------------------------- regions


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean mask: labels (H, W) (0 = off, 1..n) and n."""
    h, w = mask.shape
    big = h * w
    lab = np.where(mask, np.arange(big).reshape(h, w), big)
    while True:
        pad = np.pad(lab, 1, constant_values=big)
        m = lab
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                m = np.minimum(m, pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w])
        m = np.where(mask, m, big)
        flat = np.append(m.ravel(), big)
        for _ in range(4):  # pointer jumping
            m = flat[m]
            flat = np.append(m.ravel(), big)
        if np.array_equal(m, lab):
            break
        lab = m
    roots, out = np.unique(lab[mask], return_inverse=True)
    res = np.zeros((h, w), dtype=np.int64)
    res[mask] = out + 1
    return res, len(roots)


def dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 binary dilation."""
    pad = np.pad(mask, 1)
    h, w = mask.shape
    out = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            out |= pad[dy : dy + h, dx : dx + w]
    return out


def erode(mask: np.ndarray) -> np.ndarray:
    """3x3 binary erosion; pixels beyond the array count as background."""
    pad = np.pad(mask, 1)
    h, w = mask.shape
    out = np.ones_like(mask)
    for dy in range(3):
        for dx in range(3):
            out &= pad[dy : dy + h, dx : dx + w]
    return out


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every enclosed hole filled."""
    lab, _ = label_components(np.pad(~mask, 1, constant_values=True))
    outside = lab == lab[0, 0]
    return ~outside[1:-1, 1:-1]


def _grow(seeds: list[np.ndarray], within: np.ndarray) -> list[np.ndarray]:
    """Grow seed masks ring by ring over `within` (earlier seeds win ties); returns the grown masks."""
    out = [sd & within for sd in seeds]
    rest = within.copy()
    for m in out:
        rest &= ~m
    while rest.any():
        moved = False
        for i, m in enumerate(out):
            g = dilate(m) & rest
            if g.any():
                out[i] = m | g
                rest &= ~g
                moved = True
        if not moved:
            break
    return out


def albedo_errors(pixels: np.ndarray) -> np.ndarray:
    """CIELAB distance (C,) from the median colour of pixels (N, 3) to each palette colour's nearest shade."""
    ref, owner = _shaded_palette_lab()
    lab = srgb_to_lab(np.median(np.asarray(pixels, dtype=np.float64).reshape(-1, 3), axis=0))
    d = np.linalg.norm(ref - lab, axis=1)  # (C*K,)
    return np.array([d[owner == c].min() for c in range(len(COLOR_NAMES))])


def _solidity(mask: np.ndarray, occupied: np.ndarray | None = None) -> float:
    """Area over convex hull area, not counting hull pixels `occupied` by other regions."""
    area = float(mask.sum())
    return area / (area + _deficit(mask, occupied)) if area > 0 else 1.0


@dataclass(frozen=True)
class Surround:
    """What surrounds the regions of one image, for judging whether a region's concavities are its own."""

    foreground: np.ndarray  # (H, W) bool
    neutral: np.ndarray  # (H, W) bool, foreground pixels named white or gray
    shade: np.ndarray  # (H, W) bool, background pixels only a shadow explains

    def occupied(self, m: np.ndarray) -> np.ndarray:
        """Pixels (H, W) that may hide part of region m: other regions' foreground and, around a white or gray
        region, the shade (on a neutral floor such a solid's shaded or mirroring faces read as shadow)."""
        occ = self.foreground & ~m
        if m.any() and self.neutral[m].mean() > 0.5:
            occ |= self.shade
        return occ


def _one_object(union: np.ndarray, s: DetectSettings, around: Surround | None) -> bool:
    """True when a union of regions is convex enough for one solid where no other region covers it, and
    holds no cut `_split_region` would make."""
    occupied = None if around is None else around.foreground & ~union
    return _solidity(union, occupied) >= s.merge_solidity and len(_split_region(union, s, around)) == 1


def _fill_gaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Union of two nearby masks plus the pixels of a one-pixel gap between them."""
    return a | b | (dilate(a) & dilate(b))


def _merge_compatible(parts: list[np.ndarray], img: np.ndarray, s: DetectSettings,
                      around: Surround | None = None) -> list[np.ndarray]:
    """Merge nearby regions (at most one pixel apart) that one palette colour explains under different
    shading (lit and shaded faces of one object) when their union is convex, and thin fringes of any colour."""
    parts = list(parts)
    while len(parts) > 1:
        errs = [albedo_errors(img[m]) for m in parts]
        best = None
        for i in range(len(parts)):
            grown = dilate(dilate(parts[i]))
            for j in range(i + 1, len(parts)):
                if not (grown & parts[j]).any():
                    continue
                fit = float(np.min(np.maximum(errs[i], errs[j])))
                a, b = parts[i].sum(), parts[j].sum()
                small = parts[i] if a < b else parts[j]
                fleck = min(a, b) < s.fleck_ratio * max(a, b)
                thin = erode(small).sum() < 0.3 * small.sum()
                if fleck and thin:
                    fit = -1.0  # anti-aliased fringe between two objects: any colour
                elif fit > s.merge_de:
                    continue
                elif not (_is_cap(parts[i], parts[j], around) or _one_object(parts[i] | parts[j], s, around)):
                    continue
                if best is None or fit < best[0]:
                    best = (fit, i, j)
        if best is None:
            break
        _, i, j = best
        parts[i] = _fill_gaps(parts[i], parts[j])
        del parts[j]
    return parts


def _is_cap(a: np.ndarray, b: np.ndarray, around: Surround | None) -> bool:
    """True when one of two white or gray regions is a flat strip lying on top of the other across its width:
    the lit top face of a neutral solid, cut from its sides by a floor-coloured rim."""
    if around is None or around.neutral[a].mean() <= 0.5 or around.neutral[b].mean() <= 0.5:
        return False
    (tx0, ty0, tx1, ty1), (bx0, by0, bx1, _) = sorted((mask_box(a), mask_box(b)), key=lambda t: t[1] + t[3])
    flat = ty1 - ty0 <= 0.4 * (tx1 - tx0)
    on_top = by0 - 2 <= ty1 <= by0 + 0.5 * (ty1 - ty0) and ty0 < by0
    across = min(tx1, bx1) - max(tx0, bx0) >= 0.7 * max(tx1 - tx0, bx1 - bx0)
    return bool(flat and on_top and across)


def _merge_patterns(parts: list[np.ndarray], img: np.ndarray, s: DetectSettings,
                    around: Surround | None = None) -> list[np.ndarray]:
    """Merge the pieces of a pattern into one object: growing from the largest region, the touching
    regions of one colour merge when there are two or more of them (stripes, dots, checks) or they share
    the body's colour (the body's own cells between checks), provided the union stays convex."""
    parts = sorted(parts, key=lambda m: -int(m.sum()))
    names = [dominant_color(img[m])[0] for m in parts]
    i = 0
    while i < len(parts):
        merged = False
        grown = dilate(parts[i])
        groups: dict[str, list[int]] = {}
        for j in range(i + 1, len(parts)):
            if (grown & parts[j]).any():
                groups.setdefault(names[j], []).append(j)
        for color, members in groups.items():
            if len(members) < 2 and color != names[i]:
                continue
            union = parts[i] | np.any([parts[j] for j in members], axis=0)
            if _one_object(union, s, around):
                for j in members:
                    parts[i] = _fill_gaps(parts[i], parts[j])
                parts = [m for k, m in enumerate(parts) if k not in members]
                names = [c for k, c in enumerate(names) if k not in members]
                merged = True
                break
        if not merged:
            i += 1
    return parts


def _blob_regions(blob: np.ndarray, labels: np.ndarray, img: np.ndarray, s: DetectSettings,
                  min_area: float) -> list[np.ndarray]:
    """Split one foreground blob into colour regions seeded by its sizeable single-colour cores."""  # fmt: skip
    area = int(blob.sum())
    core = erode(blob)
    if core.sum() < 0.25 * area:
        core = blob
    seeds = []
    for c in np.unique(labels[core]):
        lab, k = label_components(core & (labels == c))
        if k == 0:
            continue
        sizes = np.bincount(lab.ravel())[1:]
        for j in np.flatnonzero(sizes >= max(s.seed_ratio * area, min_area)):
            seeds.append((int(sizes[j]), lab == j + 1))
    if len(seeds) <= 1:
        return [blob]
    seeds.sort(key=lambda t: -t[0])
    return [m for m in _grow([m for _, m in seeds], blob) if m.any()]


def _inside_hull(mask: np.ndarray) -> np.ndarray:
    """Pixels (H, W) whose centres lie inside the convex hull of a mask."""
    v = hull_polygon(mask)
    out = np.zeros(mask.shape, dtype=bool)
    if len(v) < 3:
        return mask.copy()
    x0, y0 = np.floor(v.min(axis=0)).astype(int)
    x1, y1 = np.ceil(v.max(axis=0)).astype(int)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    inside = _in_polygon(v, np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], 1))  # (P,)
    out[y0:y1, x0:x1] = inside.reshape(y1 - y0, x1 - x0)
    return out


def _fill_hulls(parts: list[np.ndarray], around: Surround) -> list[np.ndarray]:
    """Each region takes the pixels inside its convex hull that touch it and that may be its own (see
    `Surround.occupied`): solids have convex silhouettes."""
    taken = np.any(parts, axis=0) if parts else np.zeros(around.foreground.shape, dtype=bool)
    out = []
    for m in parts:
        pool = around.occupied(m) & ~around.foreground & _inside_hull(m) & ~taken
        if pool.any():
            lab, _ = label_components(pool | m)
            m = m | (pool & np.isin(lab, np.unique(lab[m])))
            taken |= m
        out.append(m)
    return out


def _regions(fg: np.ndarray, labels: np.ndarray, img: np.ndarray, s: DetectSettings,
             shade: np.ndarray | None = None) -> list[np.ndarray]:
    """Object regions: foreground blobs, each split by colour where it holds sizeable areas of two colours,
    then by shape where one colour holds several convex solids; regions of one object merge back, and each
    takes the pixels inside its hull that may be its own; `shade` (H, W) marks background pixels only a
    shadow explains."""
    h, w = fg.shape
    lab, n = label_components(fg)
    around = Surround(fg, np.isin(labels, NEUTRAL_INDEX), np.zeros_like(fg) if shade is None else shade)
    min_area = max(4, s.min_area * h * w)
    areas = np.bincount(lab.ravel(), minlength=n + 1)
    out = []
    for r in np.flatnonzero(areas >= min_area):
        if r == 0:
            continue
        blob = lab == r
        y0, x0 = np.min(np.nonzero(blob), axis=1)
        y1, x1 = np.max(np.nonzero(blob), axis=1) + 1
        y0, x0, y1, x1 = max(y0 - 1, 0), max(x0 - 1, 0), min(y1 + 1, h), min(x1 + 1, w)
        crop = (slice(y0, y1), slice(x0, x1))
        for part in _blob_regions(_fill_holes(blob[crop]), labels[crop], img[crop], s, min_area):
            full = np.zeros((h, w), dtype=bool)
            full[y0:y1, x0:x1] = part
            out.extend(_split_region(full, s, around))
    return _fill_hulls(_merge_patterns(_merge_compatible(out, img, s, around), img, s, around), around)


# ----------------------------------------------------------------------------- geometry of a region


def object_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Box of a region without its anti-aliased rim: the eroded region's box grown by half a pixel, so a
    region with or without a one-pixel blended rim lands within half a pixel of the solid's own box."""
    core = erode(mask)
    if not core.any():
        return mask_box(mask)
    x0, y0, x1, y1 = mask_box(core)
    return x0 - 0.5, y0 - 0.5, x1 + 0.5, y1 + 0.5


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a non-empty mask, exclusive ends."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def _profile(values: np.ndarray, n: int) -> np.ndarray:
    """Resample a 1D profile to n points (linear)."""
    if len(values) == 1:
        return np.repeat(values.astype(np.float64), n)
    return np.interp(np.linspace(0, len(values) - 1, n), np.arange(len(values)), values)


def shape_features(mask: np.ndarray, image: np.ndarray, others: np.ndarray | None = None) -> np.ndarray:
    """Scale-free silhouette and shading features (F,) of one region: mask (H, W), image (H, W, 3);
    `others` (H, W) marks the other regions, whose contact tells where the silhouette may be cut off."""
    contact = np.zeros(4)
    edge = mask & ~erode(mask)
    if others is not None and edge.any():
        touch = edge & dilate(others)
        ys, xs = np.nonzero(edge)
        cy, cx = ys.mean(), xs.mean()
        for i, sel in enumerate((ys < cy, ys >= cy, xs < cx, xs >= cx)):
            contact[i] = touch[ys[sel], xs[sel]].mean() if sel.any() else 0.0
    x0, y0, x1, y1 = (int(v) for v in mask_box(mask))
    m = mask[y0:y1, x0:x1]
    h, w = m.shape
    area = float(m.sum())
    hull = max(convex_hull_area(m), area)
    per = float((m & ~erode(m)).sum())
    widths = m.sum(axis=1).astype(np.float64)  # (h,)
    wprof = _profile(widths, 10) / max(widths.max(), 1.0)
    cols = np.flatnonzero(m.any(axis=0))
    top = np.array([np.flatnonzero(m[:, c])[0] for c in cols], dtype=np.float64) / h
    bot = np.array([np.flatnonzero(m[:, c])[-1] for c in cols], dtype=np.float64) / h
    tprof, bprof = _profile(top, 9), _profile(bot, 9)
    # shading: luminance profile across the middle band; flat faces make steps, round sides ramps
    lum = image[y0:y1, x0:x1] @ np.array([0.299, 0.587, 0.114])  # (h, w)
    band = m.copy()
    band[: int(0.45 * h)] = False
    band[int(0.9 * h) + 1 :] = False
    colmean = np.array([lum[band[:, c], c].mean() if band[:, c].any() else np.nan for c in range(w)])
    colmean = colmean[np.isfinite(colmean)]
    inner = lum[erode(m)] if erode(m).any() else lum[m]
    spread = float(inner.std() / max(inner.mean(), 1.0))
    if colmean.size >= 3:
        steps = np.abs(np.diff(colmean))
        rng = float(colmean.max() - colmean.min()) + 1e-6
        step_ratio = float(steps.max() / rng)
        step2 = float(np.sort(steps)[-2] / rng) if steps.size > 1 else 0.0
        cprof = _profile((colmean - colmean.min()) / rng, 5)
    else:
        step_ratio, step2, cprof = 0.0, 0.0, np.zeros(5)
    gy = np.abs(np.diff(lum, axis=0))[(m[1:] & m[:-1])]
    gx = np.abs(np.diff(lum, axis=1))[(m[:, 1:] & m[:, :-1])]
    g = np.concatenate([gx, gy]) / max(float(inner.mean()), 1.0)
    sharp = float((g > 0.12).mean()) if g.size else 0.0
    flat = _flatness(m, lum)
    feats = [
        area / (w * h),
        math.log(w / h),
        area / hull,
        4 * math.pi * area / max(per, 1.0) ** 2,
        spread,
        step_ratio,
        step2,
        sharp,
        float(np.argmax(widths) / max(h - 1, 1)),
        float(top.min() - np.median(top)),
        float(bot.max() - np.median(bot)),
    ]
    return np.concatenate([feats, wprof, tprof, bprof, cprof, contact, flat]).astype(np.float64)


def _flatness(m: np.ndarray, lum: np.ndarray) -> np.ndarray:
    """Shading texture (4,) of a region's core, mask and luminance (h, w): the shares of pixels without a
    horizontal and without a vertical luminance change (flat faces of cubes and pyramids stay constant,
    curved sides of cylinders, cones and spheres ramp), and the shares of the one and three most common
    luminance levels; robust to occlusion, which cuts a silhouette but not its shading."""
    core = erode(m)
    if core.sum() < 6:
        return np.zeros(4)
    mean = max(float(lum[core].mean()), 1.0)
    pad = np.pad(lum, 1, mode="edge")
    across = (pad[:-2, 1:-1] + pad[1:-1, 1:-1] + pad[2:, 1:-1]) / 3.0  # (h, w) smoothed along columns
    along = (pad[1:-1, :-2] + pad[1:-1, 1:-1] + pad[1:-1, 2:]) / 3.0  # (h, w) smoothed along rows
    gx = np.abs(np.diff(across, axis=1)) / mean  # (h, w - 1)
    gy = np.abs(np.diff(along, axis=0)) / mean  # (h - 1, w)
    ok_x, ok_y = core[:, 1:] & core[:, :-1], core[1:] & core[:-1]
    flat_x = float((gx[ok_x] < 0.01).mean()) if ok_x.any() else 0.0
    flat_y = float((gy[ok_y] < 0.01).mean()) if ok_y.any() else 0.0
    levels, _ = np.histogram(lum[core] / mean, bins=np.arange(0.0, 2.5, 0.02))
    total = max(int(levels.sum()), 1)
    return np.array([flat_x, flat_y, np.sort(levels)[-3:].sum() / total, levels.max() / total])


# ----------------------------------------------------------------------------- shape classifier


@dataclass
class ShapeModel:
    """A small multilayer perceptron (ReLU hidden layers, softmax output) over standardised shape features."""

    classes: tuple[str, ...]
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    layers: list[tuple[np.ndarray, np.ndarray]]  # [(W (out, in), b (out,))], last one gives the logits
    meta: dict[str, Any] = field(default_factory=dict)

    def probs(self, feats: np.ndarray) -> np.ndarray:
        """Class probabilities (N, C) of feature rows (N, F)."""
        z = (np.atleast_2d(feats) - self.mean) / self.scale
        for i, (w, b) in enumerate(self.layers):
            z = z @ w.T + b
            if i < len(self.layers) - 1:
                z = np.maximum(z, 0.0)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def to_json(self) -> dict[str, Any]:
        """JSON-safe parameters."""
        r = lambda a: np.round(np.asarray(a, dtype=np.float64), 5).tolist()
        return {"classes": list(self.classes), "mean": r(self.mean), "scale": r(self.scale),
                "layers": [{"weight": r(w), "bias": r(b)} for w, b in self.layers], "meta": self.meta}  # fmt: skip

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ShapeModel:
        """Inverse of `to_json`."""
        a = lambda v: np.asarray(v, dtype=np.float64)
        layers = [(a(x["weight"]), a(x["bias"])) for x in d["layers"]]
        return cls(tuple(d["classes"]), a(d["mean"]), a(d["scale"]), layers, d.get("meta", {}))


def load_shape_model(path: Path | None = None) -> ShapeModel:
    """The shipped shape classifier (or one saved by `mediagen.world.score.fit`)."""
    p = Path(path) if path is not None else MODEL_FILE
    if not p.is_file():
        raise FileNotFoundError(f"shape classifier {p} is missing: rebuild it with `python -m mediagen.world.score.fit`")
    return ShapeModel.from_json(json.loads(p.read_text()))


def fit_mlp(x: np.ndarray, y: np.ndarray, classes: tuple[str, ...], hidden: int = 32, l2: float = 1e-3,
            iters: int = 2500, lr: float = 0.01, seed: int = 0) -> ShapeModel:
    """Fit a one-hidden-layer perceptron by full-batch Adam (Kingma & Ba 2015) on cross-entropy + L2."""  # fmt: skip
    rng = np.random.default_rng(seed)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale  # (N, F)
    n, f = z.shape
    c = len(classes)
    params = [rng.normal(0, 1 / math.sqrt(f), (hidden, f)), np.zeros(hidden),
              rng.normal(0, 1 / math.sqrt(hidden), (c, hidden)), np.zeros(c)]  # fmt: skip
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    onehot = np.eye(c)[y]
    for t in range(1, iters + 1):
        w1, b1, w2, b2 = params
        a = z @ w1.T + b1  # (N, H)
        hdn = np.maximum(a, 0.0)
        logits = hdn @ w2.T + b2  # (N, C)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        d2 = (p - onehot) / n  # (N, C)
        dh = (d2 @ w2) * (a > 0)  # (N, H)
        grads = [dh.T @ z + l2 * w1, dh.sum(0), d2.T @ hdn + l2 * w2, d2.sum(0)]
        for i, g in enumerate(grads):
            m1[i] = 0.9 * m1[i] + 0.1 * g
            m2[i] = 0.999 * m2[i] + 0.001 * g * g
            params[i] = params[i] - lr * (m1[i] / (1 - 0.9**t)) / (np.sqrt(m2[i] / (1 - 0.999**t)) + 1e-8)
    return ShapeModel(tuple(classes), mean, scale, [(params[0], params[1]), (params[2], params[3])])


# ----------------------------------------------------------------------------- detection


def hull_polygon(mask: np.ndarray) -> np.ndarray:
    """Convex hull (N, 2) as (x, y) pixel-corner vertices, counter-clockwise in image coordinates."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.zeros((0, 2))
    left = np.argmax(mask[rows], axis=1)  # only each row's extreme pixels can be hull corners
    right = mask.shape[1] - 1 - np.argmax(mask[rows, ::-1], axis=1)
    pts = np.concatenate([np.stack([x, rows + dy], 1) for x in (left, right + 1) for dy in (0, 1)])
    pts = np.unique(pts, axis=0)
    if len(pts) < 3:
        return pts.astype(np.float64)

    def half(points):
        out: list = []
        for p in points:
            while len(out) >= 2 and _cross(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(tuple(p))
        return out

    ordered = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
    return np.array(half(ordered)[:-1] + half(ordered[::-1])[:-1], dtype=np.float64)


def convex_hull_area(mask: np.ndarray) -> float:
    """Area of the convex hull of a mask's pixel squares (Andrew's monotone chain)."""
    if not mask.any():
        return 0.0
    v = hull_polygon(mask)
    if len(v) < 3:
        return 0.0
    return float(0.5 * abs(np.dot(v[:, 0], np.roll(v[:, 1], -1)) - np.dot(v[:, 1], np.roll(v[:, 0], -1))))


def _cross(o, a, b) -> float:
    """z of (a - o) x (b - o)."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _concavities(mask: np.ndarray, occupied: np.ndarray | None = None) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(depth, deepest point (x, y), inward unit normal (x, y)) of each pocket between a mask and its convex
    hull, deepest first; the normal points from the nearest hull edge into the pocket. Pixels `occupied` by
    other regions are no pocket: there the silhouette is cut by a nearer object, not bounded by its own."""
    v = hull_polygon(mask)
    if len(v) < 3:
        return []
    h, w = mask.shape
    yy, xx = np.mgrid[0:h, 0:w]
    q = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], 1)  # (P, 2) pixel centres
    a, b = v, np.roll(v, -1, axis=0)  # (E, 2) edges
    ab = b - a
    inside = _in_polygon(v, q).reshape(h, w)
    t = np.clip(((q[:, None, :] - a[None]) * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0, 1)
    foot = a[None] + t[..., None] * ab[None]  # (P, E, 2) nearest point of each edge
    dists = np.linalg.norm(q[:, None, :] - foot, axis=-1)  # (P, E)
    nearest = dists.argmin(axis=1)  # (P,)
    dist = dists.min(axis=1).reshape(h, w)
    pocket = inside & ~mask if occupied is None else inside & ~mask & ~occupied
    lab, n = label_components(pocket)
    out = []
    for k in range(1, n + 1):
        d = np.where(lab == k, dist, -1.0)
        i = int(np.argmax(d))
        normal = q[i] - foot[i, nearest[i]]
        out.append((float(d.flat[i]), q[i].copy(), normal / max(float(np.linalg.norm(normal)), 1e-9)))
    return sorted(out, key=lambda t: -t[0])


def _largest(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected piece of a mask."""
    lab, k = label_components(mask)
    if k <= 1:
        return mask
    return lab == int(np.argmax(np.bincount(lab.ravel())[1:])) + 1


def _deficit(mask: np.ndarray, occupied: np.ndarray | None = None) -> float:
    """Convex hull area minus area, less the `occupied` pixels inside the hull: how far a mask is from
    convex where nothing nearer covers it, in pixels."""
    v = hull_polygon(mask)
    if len(v) < 3:
        return 0.0
    area = 0.5 * abs(np.dot(v[:, 0], np.roll(v[:, 1], -1)) - np.dot(v[:, 1], np.roll(v[:, 0], -1)))
    covered = 0
    if occupied is not None and occupied.any():
        ys, xs = np.nonzero(occupied)
        covered = int(_in_polygon(v, np.stack([xs + 0.5, ys + 0.5], 1)).sum())
    return max(float(area) - float(mask.sum()) - covered, 0.0)


def _in_polygon(v: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Which points q (P, 2) lie inside or on the convex polygon v (E, 2), (P,) bool."""
    ab = np.roll(v, -1, axis=0) - v  # (E, 2)
    cross = ab[None, :, 0] * (q[:, None, 1] - v[None, :, 1]) - ab[None, :, 1] * (q[:, None, 0] - v[None, :, 0])
    return (cross * np.sign(cross.sum(axis=1, keepdims=True)) >= -1e-9).all(axis=1)  # (P,)


def _halves(mask: np.ndarray, point: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two connected parts of a mask (h, w) cut along the line through `point` (x, y) in `direction`:
    each side keeps its largest piece and stray pieces go to the other side."""
    h, w = mask.shape
    yy, xx = np.mgrid[0:h, 0:w]
    side = direction[0] * (yy + 0.5 - point[1]) - direction[1] * (xx + 0.5 - point[0]) > 0  # (h, w)
    a = _largest(mask & side)
    b = _largest(mask & ~a)
    return mask & ~b, b


def _cut_deficit(a: np.ndarray, b: np.ndarray, occupied: np.ndarray | None) -> float:
    """Non-convexity left by cutting a region into parts a and b (h, w): one part, the nearer solid, must be
    convex by itself; the farther one may be concave where the nearer one covers it."""
    occ_a = b if occupied is None else occupied | b
    occ_b = a if occupied is None else occupied | a
    return min(_deficit(a, occupied) + _deficit(b, occ_b), _deficit(a, occ_a) + _deficit(b, occupied))


def _cut_lines(pockets: list[tuple[float, np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Candidate cuts (point, direction): through each pair of pockets, and through each pocket at a fan of
    angles around its inward normal (one pocket is all two overlapping solids leave on a straight contour)."""
    lines = []
    for i, (_, p, _) in enumerate(pockets):
        for _, q, _ in pockets[i + 1 :]:
            if np.linalg.norm(q - p) > 1.0:
                lines.append((p, q - p))
    for _, p, n in pockets:
        base = math.atan2(n[1], n[0])
        for off in np.radians(np.arange(-75, 76, 15)):
            lines.append((p, np.array([math.cos(base + off), math.sin(base + off)])))
    return lines


def _split_region(m: np.ndarray, s: DetectSettings, around: Surround | None = None, depth: int = 0) -> list[np.ndarray]:
    """Split a region holding several touching objects of one colour (convex solids have convex silhouettes):
    among straight cuts through its concavities, the one leaving the two most convex parts, when that removes
    most of the region's non-convexity; recursive, at most three levels. A concavity that something else
    may fill (see `Surround.occupied`) is a nearer object's bite, not a gap between two solids."""
    area = float(m.sum())
    hull = convex_hull_area(m)
    if depth >= 3 or hull <= 0 or area / hull >= s.split_solidity:
        return [m]
    y0, x0 = np.min(np.nonzero(m), axis=1)
    y1, x1 = np.max(np.nonzero(m), axis=1) + 1
    crop = m[y0:y1, x0:x1]
    occ = None if around is None else around.occupied(m)[y0:y1, x0:x1]
    smooth = dilate(erode(crop)) & crop  # without one-pixel spurs and stray rim pixels
    min_depth = max(1.5, s.split_depth * math.sqrt(area))
    pockets = [p for p in _concavities(smooth if smooth.sum() > 0.8 * area else crop, occ) if p[0] >= min_depth][:4]
    if not pockets:
        return [m]
    before = _deficit(crop, occ)
    min_part = max(0.04 * area, s.min_area * m.size, 4.0)
    best = None
    for point, direction in _cut_lines(pockets):
        a, b = _halves(crop, point, direction)
        if min(a.sum(), b.sum()) < min_part:
            continue
        left = _cut_deficit(a, b, occ)
        if best is None or left < best[0]:
            best = (left, a, b)
    if best is None or before - best[0] < max(s.split_gain * before, s.split_gain_px * math.sqrt(area)):
        return [m]
    out = []
    for p in best[1:]:
        full = np.zeros_like(m)
        full[y0:y1, x0:x1] = p
        out.extend(_split_region(full, s, around, depth + 1))
    return out


@dataclass
class Segmentation:
    """Object regions of an image before shapes are named."""

    image: np.ndarray  # (H, W, 3) float64 0..255
    background: np.ndarray  # (K, H, 3) per-row background colour candidates (0 = best estimate)
    noise: float  # robust spread of background pixels around the row model
    foreground: np.ndarray  # (H, W) bool
    labels: np.ndarray  # (H, W) int, colour index per pixel (-1 = background)
    masks: list[np.ndarray]  # one (H, W) bool mask per region
    cores: list[np.ndarray]  # each mask without the blurred rim of a soft edge (see `trim_rim`): its shape


def segment(image: Any, settings: DetectSettings | None = None) -> Segmentation:
    """Background model, foreground, colour names and object regions of one RGB image."""
    s = settings or DetectSettings()
    img = to_array(image)
    h, w, _ = img.shape
    bg, noise = estimate_background(img, s)
    fg, shade = background_masks(img, bg, noise, s)
    solid = _casterless(shade, fg, img, bg[0], s)
    fg, shade = fg | solid, shade & ~solid
    labels = np.full((h, w), -1, dtype=np.int64)
    if fg.any():
        labels[fg] = name_colors(img[fg])
    masks, cores = [], []
    local_bg = _window_means(img, ~fg, s.rim_window)  # (H, W, 3) background colour near each pixel
    for m in _regions(fg, labels, img, s, shade):
        if m.sum() < max(4, s.min_area * h * w):
            continue
        x0, y0, x1, y1 = mask_box(m)
        if x1 - x0 < s.min_side or y1 - y0 < s.min_side or _horizon_streak(m, img, bg, s):
            continue
        core = trim_rim(m, img, local_bg, s)
        if _contrast(core, img, bg) < s.min_contrast:  # ripples of compression or a decoder
            continue
        masks.append(m)
        cores.append(core)
    keep = [k for k in range(len(masks)) if not _fringe(k, masks, cores, img, local_bg, s)]
    masks, cores = _join_casterless([masks[k] for k in keep], [cores[k] for k in keep], solid)
    return Segmentation(img, bg, noise, fg, labels, masks, cores)


def _casterless(shade: np.ndarray, fg: np.ndarray, img: np.ndarray, bg: np.ndarray, s: DetectSettings) -> np.ndarray:
    """Shadow-like pixels (H, W) no caster explains: a cast shadow touches the solid standing beside it (or
    the frame, beyond which its caster may stand), so a shadow-like blob touching neither is a gray solid on
    a floor of its own hue (soft edges and noise blur the small colour offset that tells them apart on a
    sharp image), together with its own shadow. Thin streaks (a blurred horizon) link nothing, and a white or
    gray foreground piece lying mostly beside the blob (a lit face of the same solid) casts nothing. A shadow
    lets the sky's light through, so a blob is a solid only where part of it is darker than any shadow cast
    away from a caster's base (the shadow of a lifted item touches nothing either); `bg` (H, 3) is the row
    background."""
    factor = (img * bg[:, None, :]).sum(-1) / np.maximum((bg * bg).sum(-1), 1.0)[:, None]  # (H, W)
    body = dilate(erode(shade))  # (H, W) without one- and two-pixel streaks
    lab, n = label_components(body)
    out = np.zeros_like(shade)
    if n == 0:
        return out
    pieces, _ = label_components(fg)
    for k in range(1, n + 1):
        blob = lab == k
        near = dilate(dilate(blob))
        if near[0].any() or near[-1].any() or near[:, 0].any() or near[:, -1].any():
            continue
        touching = [p for p in np.unique(pieces[near & fg]) if p > 0]
        dark = (factor[blob] < s.shadow_floor).mean() >= s.dark_share
        if dark and all(_face_of(pieces == p, near, img) for p in touching):
            out |= blob
    return shade & dilate(out)


def _face_of(piece: np.ndarray, near: np.ndarray, img: np.ndarray) -> bool:
    """True when a foreground piece (H, W) lies mostly within `near` (H, W) and is mostly named white or gray."""
    if (piece & near).sum() <= 0.5 * piece.sum():
        return False
    return bool(np.isin(name_colors(img[piece]), NEUTRAL_INDEX).mean() > 0.5)


def _join_casterless(masks: list[np.ndarray], cores: list[np.ndarray],
                     solid: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Regions and cores with those lying within one blob of `solid` (H, W) (see `_casterless`) joined:
    touching nothing else, the blob holds one solid, and its pieces are faces parted by a shading step or
    the solid's own shadow."""
    lab, n = label_components(solid)
    out_m, out_c, joined = [], [], {}
    for m, c in zip(masks, cores):
        inside = [b for b in range(1, n + 1) if (m & dilate(dilate(lab == b))).sum() > 0.8 * m.sum()]
        if not inside:
            out_m.append(m)
            out_c.append(c)
        elif inside[0] in joined:
            k = joined[inside[0]]
            out_m[k], out_c[k] = _fill_gaps(out_m[k], m), out_c[k] | c
        else:
            joined[inside[0]] = len(out_m)
            out_m.append(m)
            out_c.append(c)
    return out_m, out_c


def region_features(seg: Segmentation) -> list[np.ndarray]:
    """Shape features of each region of a segmentation: its core's silhouette and shading, and where the
    other regions touch it."""
    union = np.zeros(seg.image.shape[:2], dtype=bool)
    for m in seg.masks:
        union |= m
    return [shape_features(c, seg.image, union & ~m) for m, c in zip(seg.masks, seg.cores)]


def _box_sum(a: np.ndarray, r: int) -> np.ndarray:
    """Sum of a (H, W[, C]) over the (2r+1) x (2r+1) window around each pixel, zero beyond the edges."""
    pad = [(r + 1, r), (r + 1, r)] + [(0, 0)] * (a.ndim - 2)
    c = np.pad(a, pad).cumsum(0).cumsum(1)
    k = 2 * r + 1
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


def _window_means(img: np.ndarray, sel: np.ndarray, r: int) -> np.ndarray:
    """Mean colour (H, W, 3) of the `sel` (H, W) pixels in each pixel's (2r+1)^2 window; NaN where there are none."""
    n = _box_sum(sel.astype(np.float64), r)[..., None]  # (H, W, 1)
    sums = _box_sum(img * sel[..., None], r)
    return np.where(n > 0, sums / np.maximum(n, 1.0), np.nan)


def trim_rim(m: np.ndarray, img: np.ndarray, local_bg: np.ndarray, s: DetectSettings) -> np.ndarray:
    """A region (H, W) without the blurred rim a soft edge leaves around it: a pixel near the edge stays only
    where it lies past half way from the local background colour (`local_bg` (H, W, 3), NaN where there is
    none, see `_window_means`) to the local colour of the region's core (the half-contrast level of a
    blurred step, Canny's edge position for a symmetric blur)."""
    core = m
    for _ in range(s.rim_depth):
        core = erode(core)
    if core.sum() < 4:
        return m
    obj = _window_means(img, core, s.rim_window)  # (H, W, 3)
    ys, xs = np.nonzero(m & ~core & np.isfinite(obj[..., 0]) & np.isfinite(local_bg[..., 0]))
    d = obj[ys, xs] - local_bg[ys, xs]  # (N, 3)
    dd = (d * d).sum(-1)  # (N,)
    alpha = ((img[ys, xs] - local_bg[ys, xs]) * d).sum(-1) / np.maximum(dd, 1e-9)
    drop = (alpha < 0.5) & (dd > s.rim_contrast**2)
    if not drop.any():
        return m
    out = m.copy()
    out[ys[drop], xs[drop]] = False
    return _largest(out)


def _fringe(k: int, masks: list[np.ndarray], cores: list[np.ndarray], img: np.ndarray, local_bg: np.ndarray,
            s: DetectSettings) -> bool:
    """True when region k is only the blurred rim of a touching region: thin (nothing left two erosions
    in), lying along that region's edge, and coloured like a blend of the local background and its core."""
    m = masks[k]
    if erode(erode(m)).sum() > s.fringe_core * m.sum():
        return False
    ys, xs = np.nonzero(m & np.isfinite(local_bg[..., 0]))
    if len(ys) < 0.5 * m.sum():
        return False
    bg = local_bg[ys, xs]  # (N, 3)
    for j, other in enumerate(masks):
        if j == k or other.sum() < m.sum() or (m & dilate(dilate(other))).sum() < s.fringe_hug * m.sum():
            continue
        c = np.median(img[cores[j]], axis=0)  # (3,)
        d = c - bg  # (N, 3)
        alpha = np.clip(((img[ys, xs] - bg) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-9), 0.0, 1.0)
        resid = np.linalg.norm(img[ys, xs] - (bg + alpha[:, None] * d), axis=1)  # (N,)
        blend = np.median(alpha) <= s.fringe_alpha  # a thin part in the region's own colour is no rim
        if blend and np.median(resid) < s.fringe_tol * max(float(np.median(np.linalg.norm(d, axis=1))), 1.0):
            return True
    return False


def _contrast(m: np.ndarray, img: np.ndarray, bgs: np.ndarray) -> float:
    """Median distance of a region's pixels from the nearest row background candidate."""
    ys, xs = np.nonzero(m)
    return float(np.median(np.linalg.norm(img[ys, xs][None] - bgs[:, ys], axis=2).min(axis=0)))


def _horizon_streak(m: np.ndarray, img: np.ndarray, bgs: np.ndarray, s: DetectSettings) -> bool:
    """True for a thin horizontal streak whose pixels blend the background rows above and below it: the
    horizon between two objects that hide both border strips, where the row model can only interpolate."""
    x0, y0, x1, y1 = mask_box(m)
    if y1 - y0 > 2 * s.min_side or x1 - x0 < 4 * (y1 - y0):
        return False
    ys, xs = np.nonzero(m)
    up, down = bgs[1][ys], bgs[2][ys]  # (N, 3) nearest agreeing rows above and below
    d = down - up
    t = np.clip(((img[ys, xs] - up) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-9), 0.0, 1.0)  # (N,)
    off = np.linalg.norm(img[ys, xs] - (up + t[:, None] * d), axis=1)
    return bool((off < 2 * s.min_tol).mean() >= 0.8)


def analyze(image: Any, settings: DetectSettings | None = None, model: ShapeModel | None = None) -> Analysis:
    """Segment an image and name the shape and colour of every region."""
    seg = segment(image, settings)
    img = seg.image
    model = model or load_shape_model()
    dets = []
    regions = np.zeros(img.shape[:2], dtype=np.int64)
    feats = region_features(seg)
    probs = model.probs(np.stack(feats)) if feats else np.zeros((0, len(model.classes)))
    for m, p in zip(seg.masks, probs):
        color, share = dominant_color(img[m])
        k = int(np.argmax(p))
        dets.append(Detection(model.classes[k], color, object_box(m), int(m.sum()), m,
                              {c: float(v) for c, v in zip(model.classes, p)}, share))  # fmt: skip
        regions[m] = len(dets)
    return Analysis(img, seg.background, seg.noise, seg.foreground, seg.labels, regions, dets)


def detect_objects(image: Any, settings: DetectSettings | None = None, model: ShapeModel | None = None) -> list[Detection]:
    """Objects found in an image, largest first."""
    dets = analyze(image, settings, model).detections
    return sorted(dets, key=lambda d: -d.area)
