"""Scores of generated clips by tracking detected objects across frames.

- motion: each moving item the prompt states (colour, shape, direction, speed) is tracked; the direction of
  its ground point over the stated segment, seen by the first frame's camera, must agree with the stated
  one (`direction_agrees`: the captions' thresholds with a margin either way), and its speed class (image
  widths per second) is reported with its agreement (`speed_agrees`, with a margin too) but not scored;
- identity: a tracked object keeps its colour and shape in every frame it is seen (from the first frame
  that shows any), and the number of objects stays the same;
- first frame (image-to-video): the first frame reproduces the input image;
- trajectory (video-to-video): every object of the input clip follows the same path in the output, whatever
  colour the output gives it; colours the prompt asks for are checked on the matched objects (white or gray
  also as the colour most of a two-coloured object's pixels carry). A piece of the input seen only ever
  touching a larger item of its colour (a stripe beside a cube of the stripe's colour) is not an object.

Ground points: an item's base is the bottom of its silhouette (joined with the pieces that move with it: a
patterned item the detector cut apart, a person's limbs; an item of a figure's colour standing against it
stays an item), rebuilt from its top where a nearer item hides it (read at its one free end where no sighting
shows the whole base), and its x is the box centre, or the free side less half its width where a nearer item
covers the other side (an item touching a side is taken as nearer when it reaches as low in the picture: one
standing farther back ends higher up). An item stated to bounce or fall keeps a base only in the frames where
it sits on the floor; where those are too few (under GROUNDED_MIN in the segment), its depth comes from its
image size (its width where a nearer item hides its base but neither side), held only against a stated depth.
An item on the floor whose base never shows against its top gets its depth from its top edge, which moves the
same way as the base, by less; that too is held only against a stated depth. The shift over a stated segment is
the Theil-Sen slope of the ground points, so a frame where the item is hidden or cut in pieces is outvoted; a
depth that is never seen is not held against an unstated depth. Tracks that take over from one another (an
item lost for a few frames behind another) are joined first (`bodies`). Items the prompt names alike (colour,
shape and size) get distinct tracks, shared out so that most stated motions agree (nothing in the prompt tells
which is which).

Camera pan: the world pans by turning the camera about the vertical at a constant rate, so frame k is the
first frame's view turned by P * k / (T - 1) degrees, a rotation whose image mapping does not depend on
depth (`unpan` undoes it). P is read from the items that stand still: with the right P, some item's ground
point stays put over a good share of the clip (items of a colour and shape the prompt says move are left
out: one that moves along with the camera would look still at a wrong P). Without such an item nothing in the
picture shows the pan (the world's floor, walls and sky carry no texture), so every pan the prompt allows
is tried and the one that agrees with most stated motions is kept.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mediagen.errors import RequestError
from mediagen.world.clip_captions import (
    DOMINANCE,
    MIN_DISPLACEMENT,
    PAN_MIN,
    SPEED_CLASSES,
    direction_of,
)
from mediagen.world.clips import PAN_MAX
from mediagen.world.score.detect import (
    COLOR_NAMES,
    NEUTRAL_INDEX,
    Detection,
    DetectSettings,
    ShapeModel,
    detect_objects,
    dilate,
    name_colors,
    to_array,
)
from mediagen.world.spec import SIZES, Camera

PAN_STEP = 0.1  # degrees between the pans tried
STILL_TOL = 0.012  # image widths a still item's centre may wander within a window
STILL_SHARE = 0.4  # share of the clip (at least STILL_MIN frames) an item must stay still to show the pan
STILL_MIN = 6
LIFT_TOL = 0.1  # off the floor: base depth under the horizon per image height this share under its most
LIFT_WINDOW = 1  # frames either side a grounded sighting's base is the lowest of
LIFT_PX = 2.5  # pixels of slack in that (an item sliding closer sinks in the picture)
PAN_WORDS = ("left", "right", "none")
AIRBORNE_VERBS = ("bounces", "falls")  # stated motions that lift an item off the floor
GROUNDED_MIN = 3  # sightings on the floor a bouncing or falling item's depth needs before its size is not read
GROUP_TOL = 0.03  # image widths the pieces of one body may shift against each other
SPEED_MARGIN = 0.25  # a speed agrees within this share beyond its class's bounds
FULL_VIEW = 0.6  # share of its median area a sighting must show for its shape to count
SIDE_SHRINK = 0.85  # an item covered at one side and narrower than this share of its width: placed by its free side
MAX_TWIN_TRACKS = 6  # tracks of one colour and shape shared out among items the prompt names alike
ITEM_SURE = 0.9  # shape probability that makes a region touching a figure an item of its own ...
ITEM_SHARE = 0.5  # ... when it is at least this share of the figure's area


@dataclass
class Track:
    """One object followed through a clip: its detection in each frame (None where not seen)."""

    color: str
    shape: str
    dets: list[Detection | None] = field(repr=False)

    def bottom(self, k: int) -> np.ndarray | None:
        """Ground point of the object's base centre in frame k (None where not seen): box centre x, and the
        mean of the silhouette's lowest rows at its left and right ends (the base's side points, at the
        centre's depth whatever the object's turn; the lowest pixel would move as a corner swings round);
        a person's lowest row (the standing foot; the hands hang at its sides)."""
        d = self.dets[k]
        if d is None:
            return None
        x = (d.box[0] + d.box[2]) / 2.0
        if self.shape == "person":
            return np.array([x, float(np.flatnonzero(d.mask.any(axis=1))[-1] + 1.0)])
        cols = np.flatnonzero(d.mask.any(axis=0))
        edge = max(1, round(0.15 * len(cols)))
        lows = _lowest_rows(d.mask, np.concatenate([cols[:edge], cols[-edge:]])) + 1.0  # (2E,)
        return np.array([x, float(np.mean(lows))])

    def center(self, k: int) -> np.ndarray | None:
        """Box centre in frame k, or None."""
        d = self.dets[k]
        return None if d is None else np.asarray(d.center)

    @property
    def seen(self) -> int:
        """Frames the object was found in."""
        return sum(d is not None for d in self.dets)


def frames_array(frames: Any) -> list[np.ndarray]:
    """A clip (list of PIL images or arrays, or an array (T, H, W, 3)) as a list of float arrays."""
    out = [to_array(f) for f in frames]
    if not out:
        raise RequestError("the clip has no frames")
    if any(f.shape != out[0].shape for f in out):
        raise RequestError("the clip's frames differ in size")
    return out


# ----------------------------------------------------------------------------- tracking


def _union(a: Detection, b: Detection) -> Detection:
    """One detection covering two pieces of an item (the first one's names kept)."""
    box = (min(a.box[0], b.box[0]), min(a.box[1], b.box[1]), max(a.box[2], b.box[2]), max(a.box[3], b.box[3]))
    return Detection(a.shape, a.color, box, a.area + b.area, a.mask | b.mask, a.shape_probs, a.color_share)


def _whole_item(q: Detection, person: Detection) -> bool:
    """True when a region touching a person is an item of its own: the shape model is sure of a shape other
    than a person's, the region is at least ITEM_SHARE of the person's size (a limb cut off at a crossing is
    a thin sliver of the figure) and it reaches down past the middle of the person's extent, as an item on
    the floor beside the figure does (the upper body sits on the legs)."""
    return (q.shape != "person" and q.confidence >= ITEM_SURE and q.area >= ITEM_SHARE * person.area
            and q.box[3] > (person.box[1] + person.box[3]) / 2)  # fmt: skip


def _absorb_one(dets: list[Detection], pieces_only: bool) -> bool:
    """Join one region of a person's colour touching that person into it (in place): with `pieces_only`, only
    a region read as a person's piece; otherwise any region but a whole item of that colour (`_whole_item`).
    False when none is left."""
    for i, p in enumerate(dets):
        if p.shape != "person":
            continue
        near = dilate(dilate(p.mask))
        for j, q in enumerate(dets):
            if j == i or q.color != p.color or (q.shape != "person" if pieces_only else _whole_item(q, p)):
                continue
            if (near & q.mask).any():
                dets[i] = _union(p, q)
                del dets[j]
                return True
    return False


def merge_figure_parts(dets: list[Detection]) -> list[Detection]:
    """Detections with the pieces of a person rejoined: a region of a person's colour touching it (a leg or
    an arm cut off at a crossing) belongs to it, unless it is an item of that colour standing against the
    figure (`_whole_item`, judged against the figure with its person-like pieces joined first)."""
    out = list(dets)
    while _absorb_one(out, True):
        pass
    while _absorb_one(out, False):
        pass
    return sorted(out, key=lambda d: -d.area)


def detect_frames(frames: Sequence[Any], settings: DetectSettings | None = None,
                  model: ShapeModel | None = None) -> list[list[Detection]]:
    """Detections of every frame, a person's pieces rejoined."""  # fmt: skip
    return [merge_figure_parts(detect_objects(img, settings, model)) for img in frames_array(frames)]


def link(per_frame: list[list[Detection]], width: int, max_jump: float = 0.2) -> list[Track]:
    """Tracks from per-frame detections: each detection joins the track of the same colour whose last
    position is nearest (within `max_jump` of the image width per frame); the others start new tracks."""
    t_count = len(per_frame)
    tracks: list[Track] = []
    last: list[tuple[int, np.ndarray]] = []  # per track: (frame, centre)
    for k, dets in enumerate(per_frame):
        pairs = []
        for i, d in enumerate(dets):
            for j, tr in enumerate(tracks):
                if tr.color != d.color or tr.dets[k] is not None:
                    continue
                f, c = last[j]
                dist = float(np.linalg.norm(np.asarray(d.center) - c))
                if dist <= max_jump * width * (k - f):
                    pairs.append((dist + (0 if tr.shape == d.shape else 0.05 * width), i, j))
        used_d, used_t = set(), set()
        for _, i, j in sorted(pairs):
            if i in used_d or j in used_t:
                continue
            used_d.add(i)
            used_t.add(j)
            tracks[j].dets[k] = dets[i]
            last[j] = (k, np.asarray(dets[i].center))
        for i, d in enumerate(dets):
            if i not in used_d:
                tr = Track(d.color, d.shape, [None] * t_count)
                tr.dets[k] = d
                tracks.append(tr)
                last.append((k, np.asarray(d.center)))
    for tr in tracks:  # the shape a track shows most often names it (on a tie, the one seen over more pixels)
        dets = [d for d in tr.dets if d is not None]
        shapes = [d.shape for d in dets]
        area = {x: sum(d.area for d in dets if d.shape == x) for x in shapes}
        tr.shape = max(area, key=lambda x: (shapes.count(x), area[x]))
    return tracks


def track(frames: Sequence[Any], settings: DetectSettings | None = None, model: ShapeModel | None = None,
          max_jump: float = 0.2) -> list[Track]:
    """Follow every detected object through a clip (see `link`)."""  # fmt: skip
    imgs = frames_array(frames)
    return link(detect_frames(imgs, settings, model), imgs[0].shape[1], max_jump)


# ----------------------------------------------------------------------------- camera


def focal_px(height: int, fov: float = Camera.fov) -> float:
    """Focal length in pixels of the world's camera for an image `height` pixels tall."""
    return (height / 2.0) / math.tan(math.radians(fov) / 2.0)


def horizon_row(height: int, pitch: float = Camera.pitch, fov: float = Camera.fov) -> float:
    """Image row of the horizon of the world's camera."""
    return height / 2.0 - focal_px(height, fov) * math.tan(math.radians(pitch))


def unpan(uv: np.ndarray, degrees: np.ndarray | float, width: int, height: int, pitch: float = Camera.pitch,
          fov: float = Camera.fov) -> np.ndarray:
    """Pixel coordinates (..., 2) seen by a camera turned `degrees` about the vertical (broadcast against
    uv[..., 0]) as the unturned camera sees the same rays."""  # fmt: skip
    f = focal_px(height, fov)
    uv = np.asarray(uv, dtype=np.float64)
    y = np.radians(np.asarray(degrees, dtype=np.float64))
    sp, cp = math.sin(math.radians(pitch)), math.cos(math.radians(pitch))
    cx, cy = (uv[..., 0] - width / 2.0) / f, -(uv[..., 1] - height / 2.0) / f  # camera ray (cx, cy, 1)
    sy, cy_ = np.sin(y), np.cos(y)
    wx = cx * cy_ + cy * sp * sy + cp * sy  # world ray: right, up and forward rows of the turned camera
    wy = cy * cp - sp
    wz = -cx * sy + cy * sp * cy_ + cp * cy_
    rx, ry, rz = wx, wy * cp + wz * sp, -wy * sp + wz * cp  # the unturned camera's coordinates
    return np.stack([width / 2.0 + f * rx / rz, height / 2.0 - f * ry / rz], axis=-1)


def pan_range(pan: str | None) -> tuple[float, float]:
    """Pans (degrees, lowest and highest) a prompt allows: 'left', 'right', 'none', or None (not said)."""
    if pan is None:
        return -PAN_MAX, PAN_MAX
    if pan not in PAN_WORDS:
        raise RequestError(f"unknown camera pan {pan!r}; expected one of {', '.join(PAN_WORDS)}")
    return {"left": (-PAN_MAX, -PAN_MIN), "right": (PAN_MIN, PAN_MAX), "none": (0.0, 0.0)}[pan]


def _centroid(d: Detection) -> np.ndarray:
    """Mean pixel position (x, y) of a detection's mask."""
    ys, xs = np.nonzero(d.mask)
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5])


def _still_frames(q: np.ndarray, n: int, tol: float) -> np.ndarray:
    """Per pan tried, the number of frames lying in a window of n consecutive sightings whose points
    (G, K, 2) stay within `tol` pixels either way: (G,)."""
    win = np.lib.stride_tricks.sliding_window_view(q, n, axis=1)  # (G, W = K - n + 1, 2, n)
    still = ((win.max(-1) - win.min(-1)) <= tol).all(-1).astype(np.int64)  # (G, W)
    starts = np.zeros((q.shape[0], q.shape[1] + 1), dtype=np.int64)  # +1 where a still window starts, -1 after it
    starts[:, : still.shape[1]] += still
    starts[:, n:] -= still
    return (np.cumsum(starts[:, :-1], axis=1) > 0).sum(axis=1)


@dataclass
class PanEstimate:
    """The pan (degrees over the clip) a clip is judged with and where it comes from: 'stated' (the prompt
    allows one pan), 'still items' (read from the items that stand still) or 'best fit' (not visible:
    the allowed pan that agrees with most stated motions)."""

    degrees: float
    source: str
    still_frames: int = 0


def estimate_pan(tracks: list[Track], n_frames: int, width: int, height: int, lo: float, hi: float) -> PanEstimate | None:
    """The pan in [lo, hi] under which items stay still longest, or None when no item stays still."""
    if hi - lo < 1e-9:
        return PanEstimate(lo, "stated")
    grid = np.arange(lo, hi + 1e-9, PAN_STEP)  # (G,)
    n = max(STILL_MIN, math.ceil(STILL_SHARE * n_frames))
    total = np.zeros(len(grid), dtype=np.int64)
    for tr in tracks:
        ks = np.array([k for k, d in enumerate(tr.dets) if d is not None])
        if len(ks) < n:
            continue
        pts = np.stack([_centroid(tr.dets[k]) for k in ks])  # (K, 2)
        q = unpan(pts[None], grid[:, None] * ks[None, :] / max(n_frames - 1, 1), width, height)  # (G, K, 2)
        total += _still_frames(q, n, STILL_TOL * width)
    best = int(total.max())
    if best < n:
        return None
    i = int(np.argmax(total))
    j = i
    while j + 1 < len(grid) and total[j + 1] == best:  # the middle of the best plateau
        j += 1
    return PanEstimate(float(grid[i:j + 1].mean()), "still items", best)


# ----------------------------------------------------------------------------- ground points


def _inside(a: Detection, b: Detection) -> float:
    """Share of the smaller of two boxes that lies inside the other."""
    w = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
    h = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    small = min((a.box[2] - a.box[0]) * (a.box[3] - a.box[1]), (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]))
    return max(w, 0.0) * max(h, 0.0) / max(small, 1e-9)


def rigid_group(tracks: list[Track], i: int, width: int) -> list[int]:
    """Track i and the tracks that move with it as one body: seen together in at least two frames, touching
    it in most of them and keeping their offset from it, and of its colour (an item cut in two by a nearer
    one) or lying mostly within its box (the pieces of a patterned item that the detector cut apart; two
    items that merely stand side by side stay two)."""
    a = tracks[i]
    out = [i]
    for j, b in enumerate(tracks):
        common = [k for k in range(len(a.dets)) if j != i and a.dets[k] is not None and b.dets[k] is not None]
        if len(common) < 2:
            continue
        if b.color != a.color and np.median([_inside(a.dets[k], b.dets[k]) for k in common]) < 0.5:
            continue
        touch = [(dilate(dilate(a.dets[k].mask)) & b.dets[k].mask).any() for k in common]
        off = np.stack([_centroid(b.dets[k]) - _centroid(a.dets[k]) for k in common])  # (C, 2)
        if np.mean(touch) >= 0.8 and (off.max(axis=0) - off.min(axis=0)).max() <= GROUP_TOL * width:
            out.append(j)
    return out


def merged_track(tracks: list[Track], members: Sequence[int]) -> Track:
    """One track holding, in every frame, the union of the members' detections (named after the first)."""
    first = tracks[members[0]]
    dets: list[Detection | None] = []
    for k in range(len(first.dets)):
        parts = [tracks[j].dets[k] for j in members if tracks[j].dets[k] is not None]
        d = parts[0] if parts else None
        for q in parts[1:]:
            d = _union(d, q)
        dets.append(d)
    return Track(first.color, first.shape, dets)


def _lowest_rows(mask: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Lowest row (C,) of a mask (H, W) in each of the columns `cols` (C,)."""
    return mask.shape[0] - 1 - np.argmax(mask[::-1, cols], axis=0)


def _lowest_row(d: Detection) -> int:
    """Lowest image row of a detection's silhouette."""
    return int(np.flatnonzero(d.mask.any(axis=1))[-1])


def _base_covered(d: Detection, others: np.ndarray, cols: np.ndarray) -> bool:
    """True when the silhouette's lowest pixels in columns `cols` touch the image's bottom edge or another
    item (H, W) just below them in a quarter of those columns."""
    height = d.mask.shape[0]
    lows = _lowest_rows(d.mask, cols)
    if lows.max() >= height - 1:
        return True
    below = others[np.minimum(lows + 1, height - 1), cols] | others[np.minimum(lows + 2, height - 1), cols]
    return float(below.mean()) >= 0.25


def _bottom_hidden(d: Detection, others: np.ndarray) -> bool:
    """True when something nearer covers the base: `_base_covered` over all the silhouette's columns."""
    return _base_covered(d, others, np.flatnonzero(d.mask.any(axis=0)))


def _free_end_low(d: Detection, others: np.ndarray) -> float:
    """Base row at the silhouette's one free end (the mean lowest row of its outer columns, as in
    `Track.bottom`) when a nearer item (H, W) or the image's bottom edge covers the other end's base; NaN
    when both ends or neither are covered."""
    cols = np.flatnonzero(d.mask.any(axis=0))
    edge = max(1, round(0.15 * len(cols)))
    ends = (cols[:edge], cols[-edge:])
    free = [float(np.mean(_lowest_rows(d.mask, e) + 1.0)) for e in ends if not _base_covered(d, others, e)]
    return free[0] if len(free) == 1 else math.nan


def _sides_hidden(d: Detection, others: np.ndarray) -> tuple[bool, bool]:
    """Whether the silhouette's left and right ends meet another item (H, W) just beside them in a quarter of
    its rows: something nearer covers that side."""
    width = d.mask.shape[1]
    rows = np.flatnonzero(d.mask.any(axis=1))
    left = np.argmax(d.mask[rows], axis=1)  # (R,) leftmost column per row
    right = width - 1 - np.argmax(d.mask[rows, ::-1], axis=1)
    out = []
    for ends, step in ((left, -1), (right, 1)):
        near, far = np.clip(ends + step, 0, width - 1), np.clip(ends + 2 * step, 0, width - 1)
        beside = others[rows, near] | others[rows, far]
        out.append(float(beside.mean()) >= 0.25)
    return out[0], out[1]


def _free_side_x(tr: Track, ks: Sequence[int], others: Sequence[np.ndarray], cut: np.ndarray) -> np.ndarray:
    """Image x of an item's centre in each sighting (frames ks): the box centre, or, where a nearer item
    covers one side of it and it shows narrower than in the nearest sighting with both sides free, that
    sighting's width measured from the free side (the visible part's centre lies off towards the free side)."""
    boxes = np.array([tr.dets[k].box for k in ks], dtype=np.float64)  # (K, 4)
    x = (boxes[:, 0] + boxes[:, 2]) / 2.0
    wide = boxes[:, 2] - boxes[:, 0]
    sides = np.array([_sides_hidden(tr.dets[k], others[k]) for k in ks])  # (K, 2)
    free = ~sides.any(axis=1) & ~cut
    if not free.any():
        return x
    ref = np.flatnonzero(free)
    for n in np.flatnonzero(sides[:, 0] ^ sides[:, 1]):
        w = wide[ref[np.argmin(np.abs(np.asarray(ks)[ref] - ks[n]))]]
        if wide[n] < SIDE_SHRINK * w:
            x[n] = boxes[n, 2] - w / 2.0 if sides[n, 0] else boxes[n, 0] + w / 2.0
    return x


def _cut(d: Detection) -> bool:
    """True when the detection touches the image's top, left or right edge."""
    return d.box[1] <= 0.5 or d.box[0] <= 0.5 or d.box[2] >= d.mask.shape[1] - 0.5


def _grounded(ks: np.ndarray, bottom: np.ndarray, ratio: np.ndarray, clear: np.ndarray) -> np.ndarray:
    """Which sightings (frames ks) of a bouncing or falling item show it on the floor: its base is (within
    LIFT_PX) the lowest of the clear sightings within LIFT_WINDOW frames (a landing between two hops), and
    its base lies nearly as deep under the horizon, per image height, as it ever does."""
    out = np.zeros(len(ks), dtype=bool)
    if not clear.any():
        return out
    best = float(np.max(ratio[clear]))
    for n in np.flatnonzero(clear):
        near = clear & (np.abs(ks - ks[n]) <= LIFT_WINDOW)
        out[n] = bottom[n] >= bottom[near].max() - LIFT_PX and ratio[n] >= (1 - LIFT_TOL) * best
    return out


def ground_path(tr: Track, others: Sequence[np.ndarray], airborne: bool = False, by_size: bool = False,
                pitch: float = Camera.pitch, fronts: Sequence[np.ndarray] | None = None,
                by_top: bool = False) -> np.ndarray:
    """Ground point (x, y) of a track in every frame, (T, 2), NaN where not seen: the silhouette's bottom,
    rebuilt from its top where a nearer item (`others`: per frame, the mask (H, W) of every other item)
    hides it. An `airborne` item (one that bounces or falls) keeps its base only in the frames where it
    sits on the floor (its base lies as deep under the horizon, per image height, as it ever does); y is
    unknown (NaN) in the others. With `by_size`, y comes from the item's image height in every frame where
    it shows whole (times that deepest ratio: coarser, but known while the item flies), and from its image
    width where only its base is hidden (times the same ratio per width). With `by_top`, y is the silhouette's
    top wherever it lies under the horizon: on the floor it moves the same way as the base, by less (a base at
    height 0 and a top at height H < the camera's, both at one depth). `fronts` (per frame, the mask of the
    other items whose silhouettes reach as low as this one's, so that may stand nearer; default `others`)
    tell where a side is hidden: there the width is not read, and the centre comes from the free side."""  # fmt: skip
    out = np.full((len(tr.dets), 2), np.nan)
    ks = [k for k, d in enumerate(tr.dets) if d is not None]
    if not ks:
        return out
    fronts = others if fronts is None else fronts
    v_h = horizon_row(tr.dets[ks[0]].mask.shape[0], pitch)
    raw = np.stack([tr.bottom(k) for k in ks])  # (K, 2)
    top = np.array([tr.dets[k].box[1] for k in ks])  # (K,)
    hidden = np.array([_bottom_hidden(tr.dets[k], others[k]) for k in ks])
    cut = np.array([_cut(tr.dets[k]) for k in ks])
    span, below = raw[:, 1] - top, raw[:, 1] - v_h  # the item's image height; its base under the horizon
    clear = ~hidden & ~cut & (below > 1) & (top - v_h > 2)
    if clear.any():
        clear &= span >= max(3.0, 0.6 * float(np.median(span[clear])))  # not a fragment
    y = raw[:, 1].copy()
    lifted = np.full(len(ks), airborne)
    if clear.any() and airborne:
        ratio = below / np.maximum(span, 1e-9)
        lifted = ~_grounded(np.array(ks), raw[:, 1], ratio, clear)
        if by_size:
            best = int(np.flatnonzero(clear)[np.argmax(ratio[clear])])
            wide = np.array([tr.dets[k].box[2] - tr.dets[k].box[0] for k in ks])  # (K,) image widths
            narrowed = np.array([any(_sides_hidden(tr.dets[k], fronts[k])) for k in ks])  # (K,)
            sides = hidden & ~cut & ~narrowed & (top - v_h > 2)  # the base is covered, the sides show
            y = np.where(clear, v_h + ratio[best] * span, v_h + below[best] / max(wide[best], 1e-9) * wide)
            lifted = ~(clear | sides)
    y = np.where(lifted, np.nan, y)
    on_floor = clear & ~lifted
    if on_floor.any() and not airborne:  # the top of a flying item tells nothing
        scale = float(np.median(below[on_floor] / (top[on_floor] - v_h)))
        rebuild = hidden & ~cut & (top - v_h > 2)
        y = np.where(rebuild, v_h + scale * (top - v_h), y)
    elif not airborne:  # no sighting shows the base against the top: a hidden base is read at its free end
        ends = np.array([_free_end_low(tr.dets[k], others[k]) if h else np.nan for k, h in zip(ks, hidden)])
        y = np.where(hidden, ends, y)
    if by_top:
        y = np.where((top > 0.5) & (top - v_h > 2), top, np.nan)
    out[ks] = np.stack([_free_side_x(tr, ks, fronts, cut), y], axis=1)
    return out


# ----------------------------------------------------------------------------- motion


def direction_agrees(want: dict[str, Any], du: float, dv: float, width: int) -> bool:
    """A stated component must show with its sign (at half the stating threshold), and an unstated one must
    not show clearly (at 1.5 times it): motions near the captions' own thresholds are not held against. A
    depth shift of NaN (the base never seen) fails a stated depth and is not held against otherwise."""
    lim = MIN_DISPLACEMENT * width
    for key, d, other, pos in (("horizontal", du, dv, "right"), ("depth", dv, du, "toward")):
        stated = want.get(key)
        other = 0.0 if math.isnan(other) else other
        if math.isnan(d):
            if stated:
                return False
            continue
        if stated:
            if (d > 0) != (stated == pos) or abs(d) < 0.5 * lim or abs(d) < 0.5 * DOMINANCE * abs(other):
                return False
        elif abs(d) >= 1.5 * lim and abs(d) >= 1.5 * DOMINANCE * abs(other):
            return False
    return True


def speed_class(dist_px: float, seconds: float, width: int) -> str:
    """'slow', 'medium' or 'fast' from image widths per second."""
    rate = dist_px / width / max(seconds, 1e-9)
    return "slow" if rate < SPEED_CLASSES[0] else "fast" if rate > SPEED_CLASSES[1] else "medium"


def speed_agrees(want: str, dist_px: float, seconds: float, width: int) -> bool:
    """The rate (image widths per second) lies in the stated class widened by SPEED_MARGIN either way."""
    rate = dist_px / width / max(seconds, 1e-9)
    lo, hi = {"slow": (0.0, SPEED_CLASSES[0]), "medium": SPEED_CLASSES, "fast": (SPEED_CLASSES[1], math.inf)}[want]
    return lo / (1 + SPEED_MARGIN) <= rate <= hi * (1 + SPEED_MARGIN)


def _body_size(t: Track, height: int) -> float:
    """An item's height against the camera's: its image height over its base's depth under the horizon, in
    its frames nearest the floor (a low percentile: a lifted item looks taller by that measure), so alike
    items of different sizes rank by it wherever they stand."""
    v_h = horizon_row(height)
    r = [(d.box[3] - d.box[1]) / (d.box[3] - v_h) for d in t.dets if d is not None and d.box[3] - v_h > 2]
    return float(np.percentile(r, 25)) if r else 0.0


def _size_ranks(stated: list[dict[str, Any]]) -> list[tuple[int, int] | None]:
    """For each stated motion, its rank by size among the stated items of its colour and shape, and their
    number (None when it has no such twin with a size)."""
    out: list[tuple[int, int] | None] = []
    for ms in stated:
        a = ms["attributes"]
        peers = [p for p in stated if (p["attributes"].get("color"), p["attributes"].get("shape")) == (a.get("color"), a.get("shape"))
                 and p["attributes"].get("size") in SIZES]  # fmt: skip
        if len(peers) < 2 or a.get("size") not in SIZES:
            out.append(None)
            continue
        order = sorted(peers, key=lambda p: SIZES.index(p["attributes"]["size"]))
        out.append((next(i for i, p in enumerate(order) if p is ms), len(order)))
    return out


def _seen_in(t: Track, segment: Sequence[int]) -> list[int]:
    """Frames of the segment (first, last) in which the track is seen."""
    return [k for k in range(int(segment[0]), int(segment[1]) + 1) if 0 <= k < len(t.dets) and t.dets[k] is not None]


def _find_track(tracks: list[Track], attrs: dict[str, Any], segment: Sequence[int], pan: float = 0.0,
                size_rank: tuple[int, int] | None = None) -> int | None:
    """Index of the track with the stated colour that is seen in the segment, has the stated shape, the
    size rank among the alike tracks seen through half the segment (`size_rank`: its rank among the stated
    twins and their number) and is seen through most of the segment, and travels farthest during it once the
    pan (degrees over the clip) is undone (among alike items, the prompt names the one that moves)."""  # fmt: skip
    pool = [i for i, t in enumerate(tracks) if t.color == attrs.get("color")]
    a, b = int(segment[0]), int(segment[1])
    seen = {i: _seen_in(tracks[i], segment) for i in pool}
    alike = [i for i in pool if len(seen[i]) >= 2 and tracks[i].shape == attrs.get("shape")]
    steady = [i for i in alike if len(seen[i]) >= 0.5 * (b - a + 1)]  # not a fragment seen now and then
    alike = steady if len(steady) >= max(2, size_rank[1] if size_rank else 2) else alike
    sized = set(alike)
    if size_rank is not None and len(alike) >= max(2, size_rank[1]):
        h = next(d for d in tracks[alike[0]].dets if d is not None).mask.shape[0]
        by_size = sorted(alike, key=lambda i: _body_size(tracks[i], h))
        sized = {by_size[round(size_rank[0] * (len(alike) - 1) / max(size_rank[1] - 1, 1))]}

    def travel(i: int) -> float:
        t, ks = tracks[i], seen[i]
        h, w = t.dets[ks[0]].mask.shape
        turn = pan * np.array([ks[0], ks[-1]]) / max(len(t.dets) - 1, 1)
        ends = unpan(np.stack([t.center(ks[0]), t.center(ks[-1])]), turn, w, h)  # (2, 2)
        return float(np.linalg.norm(ends[1] - ends[0]))

    def rank(i: int) -> tuple[bool, bool, bool, bool, float]:
        if len(seen[i]) < 2:
            return (False, False, False, False, 0.0)
        return (True, tracks[i].shape == attrs.get("shape"), i in sized, len(seen[i]) >= 0.5 * (b - a + 1), travel(i))

    return max(pool, key=rank) if pool else None


def _subject_path(tracks: list[Track], i: int, airborne: bool, by_size: bool = False,
                  by_top: bool = False) -> np.ndarray:
    """Ground path (T, 2) of track i joined with the pieces that move with it, the other tracks' masks
    telling where its base is hidden and those reaching as low as it in the picture where its sides are (see
    `ground_path`)."""
    h, w = next(d for d in tracks[i].dets if d is not None).mask.shape
    members = rigid_group(tracks, i, w)
    item = merged_track(tracks, members)
    others, fronts = [], []
    for k in range(len(tracks[i].dets)):
        m, f = np.zeros((h, w), dtype=bool), np.zeros((h, w), dtype=bool)  # (H, W) each
        low = _lowest_row(item.dets[k]) if item.dets[k] is not None else h
        for j, t in enumerate(tracks):
            if j not in members and t.dets[k] is not None:
                m |= t.dets[k].mask
                if _lowest_row(t.dets[k]) >= low:
                    f |= t.dets[k].mask
        others.append(m)
        fronts.append(f)
    return ground_path(item, others, airborne, by_size, fronts=fronts, by_top=by_top)


def _shift(tracks: list[Track], i: int | None, ms: dict[str, Any], pans: np.ndarray, width: int,
           height: int) -> tuple[np.ndarray, int] | None:
    """Displacement (G, 2) of the stated item (track i) over its segment under every pan tried, and the
    frames it spans. Where the prompt states a depth and the base shows too little to read it, the depth
    comes from the item's size for an item in the air (fewer than GROUNDED_MIN sightings on the floor), and
    from its top edge for one on the floor; neither is held against an unstated depth (a spinning item's size
    wavers, and a top edge moves less than the base)."""  # fmt: skip
    if i is None:
        return None
    airborne = ms.get("motion") in AIRBORNE_VERBS
    path = _subject_path(tracks, i, airborne)  # (T, 2)
    sh = _segment_shift(path, ms["segment"], pans, width, height)
    if sh is None or not (ms.get("direction") or {}).get("depth"):
        return sh
    a, b = ms["segment"]
    few = np.isfinite(path[a : b + 1, 1]).sum() < GROUNDED_MIN  # a slope through two landings is one misread away
    if (airborne and few) or np.isnan(sh[0][:, 1]).any():
        path = _subject_path(tracks, i, airborne, by_size=airborne, by_top=not airborne)
        other = _segment_shift(path, ms["segment"], pans, width, height)
        if other is not None:
            sh = (np.stack([sh[0][:, 0], other[0][:, 1] * sh[1] / max(other[1], 1)], axis=1), sh[1])
    return sh


def _twins(stated: list[dict[str, Any]]) -> list[list[int]]:
    """Groups (indices) of two or more stated motions whose items the prompt names alike (colour, shape and
    size): nothing in the prompt tells which of them is which."""
    groups: dict[tuple, list[int]] = {}
    for m, ms in enumerate(stated):
        a = ms["attributes"]
        groups.setdefault((a.get("color"), a.get("shape"), a.get("size")), []).append(m)
    return [g for g in groups.values() if len(g) >= 2]


def _assign_twins(tracks: list[Track], stated: list[dict[str, Any]], group: list[int], picks: list[int | None],
                  shifts: list, agree: np.ndarray, agreement: Any, pans: np.ndarray, width: int,
                  height: int) -> None:
    """Give the stated motions of items named alike (`group`) distinct tracks of their colour and shape, each
    seen through half its motion's segment: of the ways to share those tracks out, the one under which most
    stated motions agree (at the best pan) is kept, the tracks first picked on a tie. Updates picks, shifts
    and agree (G, M) in place."""
    a = stated[group[0]]["attributes"]
    taken = {picks[m] for m in range(len(stated)) if m not in group}
    key = (a.get("color"), a.get("shape"))
    alike = [i for i, t in enumerate(tracks) if (t.color, t.shape) == key and i not in taken]
    if len(alike) < len(group) or len(alike) > MAX_TWIN_TRACKS:
        return
    cache: dict[tuple[int, int], tuple[Any, np.ndarray]] = {}

    def option(m: int, i: int) -> tuple[Any, np.ndarray]:
        if (m, i) not in cache:
            sh = _shift(tracks, i, stated[m], pans, width, height)
            cache[m, i] = (sh, agreement(stated[m], sh))
        return cache[m, i]

    rest = agree.sum(axis=1) - agree[:, group].sum(axis=1)  # (G,)
    mid = (pans.min() + pans.max()) / 2

    def value(choice: tuple[int | None, ...]) -> float:
        tot = rest + sum((agree[:, m] if i == picks[m] else option(m, i)[1]) for m, i in zip(group, choice))
        return float(np.max(tot - 1e-3 * np.abs(pans - mid)))

    def steady(m: int, i: int) -> bool:  # seen through half the motion's segment, not a fragment
        lo, hi = (int(v) for v in stated[m]["segment"])
        return len(_seen_in(tracks[i], (lo, hi))) >= max(2, 0.5 * (hi - lo + 1))

    best, best_value = tuple(picks[m] for m in group), None
    if len(set(best)) == len(best) and None not in best:
        best_value = value(best)
    for choice in itertools.permutations(alike, len(group)):
        if not all(i == picks[m] or steady(m, i) for m, i in zip(group, choice)):
            continue
        v = value(choice)
        if best_value is None or v > best_value + 1e-9:
            best, best_value = choice, v
    for m, i in zip(group, best):
        if i != picks[m]:
            picks[m] = i
            shifts[m], agree[:, m] = option(m, i)


@dataclass
class VideoScore:
    """Verdict on one clip."""

    score: float
    correct: bool
    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary."""
        return {"score": self.score, "correct": self.correct, **self.values}


def _theil_sen(q: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Median of the pairwise slopes of values (G, K) sampled at frames ks (K,): (G,), NaN under 2 frames."""
    if len(ks) < 2:
        return np.full(q.shape[0], np.nan)
    i, j = np.triu_indices(len(ks), 1)
    return np.median((q[:, j] - q[:, i]) / (ks[j] - ks[i])[None, :], axis=1)


def _segment_shift(row: np.ndarray, segment: Sequence[int], pans: np.ndarray, width: int,
                   height: int) -> tuple[np.ndarray, int] | None:
    """Displacement (G, 2) and the frames it spans of a ground path (T, 2) over a segment [a, b] under every pan tried (G,): the
    Theil-Sen slope of the unpanned points seen in the segment times the frames between the first and last
    of them (a straight slide that slows down moves by its mean rate; a frame where the item is hidden or
    cut in pieces is outvoted). The depth part is NaN where the base shows over less than half that stretch;
    None when the item shows in fewer than two frames of the segment."""
    t_count = len(row)
    a, b = max(int(segment[0]), 0), min(int(segment[1]), t_count - 1)
    seg = row[a : b + 1]  # (S, 2)
    has_x, has_y = np.isfinite(seg[:, 0]), np.isfinite(seg[:, 1])
    if has_x.sum() < 2:
        return None
    fill = np.where(has_y, seg[:, 1], np.nanmedian(seg[:, 1]) if has_y.any() else height * 0.6)  # rows to unpan x with
    ks = np.arange(a, b + 1)[has_x]
    pts = np.stack([seg[has_x, 0], fill[has_x]], axis=1)  # (K, 2)
    turn = pans[:, None] * ks[None, :] / max(t_count - 1, 1)  # (G, K) degrees of pan at each frame
    q = unpan(np.broadcast_to(pts, (len(pans), *pts.shape)), turn, width, height)  # (G, K, 2)
    known = has_y[has_x]
    span = ks[-1] - ks[0]
    du = _theil_sen(q[..., 0], ks)
    dv = _theil_sen(q[:, known, 1], ks[known])
    if not known.any() or ks[known][-1] - ks[known][0] < 0.5 * span:  # the base shows over too short a stretch
        dv = np.full_like(du, np.nan)
    return np.stack([du, dv], axis=1) * span, int(span)


def score_motion(frames: Sequence[Any], motions: list[dict[str, Any]], fps: float,
                 settings: DetectSettings | None = None, model: ShapeModel | None = None,
                 tracks: list[Track] | None = None, pan: str | None = None) -> VideoScore:
    """Share of stated motions (`motion_specs` records with a direction) whose tracked direction matches,
    seen by the first frame's camera; `pan` is the camera pan the prompt states ('left', 'right', 'none'
    or None when it says nothing). Speed classes and the pan used are reported alongside."""  # fmt: skip
    imgs = frames_array(frames)
    height, width = imgs[0].shape[:2]
    t_count = len(imgs)
    tracks = bodies(tracks if tracks is not None else track(imgs, settings, model), width)  # broken tracks joined
    stated = [ms for ms in motions if ms.get("direction") and ms.get("segment")]
    if not stated:
        return VideoScore(1.0, True, {"items": [], "pan": None})
    lo, hi = pan_range(pan)
    movers = {(ms["attributes"].get("color"), ms["attributes"].get("shape")) for ms in stated}
    est = estimate_pan([t for t in tracks if (t.color, t.shape) not in movers], t_count, width, height, lo, hi)
    pans = np.array([est.degrees]) if est is not None else np.arange(lo, hi + 1e-9, 2.5 * PAN_STEP)
    guess = est.degrees if est is not None else (lo + hi) / 2
    picks = [_find_track(tracks, ms["attributes"], ms["segment"], guess, rank)
             for ms, rank in zip(stated, _size_ranks(stated))]  # fmt: skip
    shifts = [_shift(tracks, i, ms, pans, width, height) for ms, i in zip(stated, picks)]

    def agreement(ms: dict[str, Any], sh: tuple[np.ndarray, int] | None) -> np.ndarray:
        if sh is None:
            return np.zeros(len(pans), dtype=bool)
        return np.array([direction_agrees(ms["direction"], du, dv, width) for du, dv in sh[0]])

    agree = np.stack([agreement(ms, sh) for ms, sh in zip(stated, shifts)], axis=1)  # (G, M)
    for group in _twins(stated):
        _assign_twins(tracks, stated, group, picks, shifts, agree, agreement, pans, width, height)
    g = int(np.argmax(agree.sum(axis=1) - 1e-3 * np.abs(pans - (lo + hi) / 2)))  # ties: the middle pan
    est = est or PanEstimate(float(pans[g]), "best fit")
    items = []
    for m, (ms, sh) in enumerate(zip(stated, shifts)):
        item = {"id": ms.get("id"), "expected": ms["direction"], "found": None, "correct": False, "speed": None,
                "expected_speed": ms.get("speed"), "speed_ok": False}  # fmt: skip
        if sh is not None:
            du, dv = (float(v) for v in sh[0][g])
            depth = 0.0 if math.isnan(dv) else dv
            item.update(found=direction_of(du, depth, width), correct=bool(agree[g, m]),
                        displacement=[round(du, 2), None if math.isnan(dv) else round(dv, 2)],
                        speed=speed_class(math.hypot(du, depth), sh[1] / fps, width))  # fmt: skip
            if ms.get("speed") in ("slow", "medium", "fast"):
                item["speed_ok"] = speed_agrees(ms["speed"], math.hypot(du, depth), sh[1] / fps, width)
        items.append(item)
    score = float(np.mean([i["correct"] for i in items]))
    speed_ok = [i["speed_ok"] for i in items if i["expected_speed"]]
    return VideoScore(score, score >= 0.999, {
        "items": items, "speed_agreement": float(np.mean(speed_ok)) if speed_ok else None,
        "pan": {"stated": pan, "degrees": round(est.degrees, 2), "source": est.source},
    })  # fmt: skip


# ----------------------------------------------------------------------------- identity, first frame, trajectory


def _last_velocity(t: Track, before: int, span: int = 3) -> np.ndarray:
    """Box-centre velocity (pixels per frame, (2,)) of a track over its last sightings (up to `span` frames
    apart) before frame `before`; zero under two sightings."""
    ks = [k for k in range(before) if t.dets[k] is not None]
    if len(ks) < 2:
        return np.zeros(2)
    k0 = next(k for k in ks if k >= ks[-1] - span)
    if k0 == ks[-1]:
        k0 = ks[-2]
    return (t.center(ks[-1]) - t.center(k0)) / (ks[-1] - k0)


def _continues(a: Track, b: Track, width: int, max_jump: float = 0.2, ahead_tol: float = 0.05) -> bool:
    """True when track b takes over from track a of the same colour: it starts at most two frames before a
    ends (a piece split off) and at most four after, within reach of a's last position, or within `ahead_tol`
    of the width per frame of where a's last velocity carries it (a falling item gains speed faster than the
    reach allows, but keeps to its course)."""
    ka = [k for k, d in enumerate(a.dets) if d is not None]
    kb = [k for k, d in enumerate(b.dets) if d is not None]
    if a.color != b.color or not ka or not kb or kb[0] <= ka[0] or not -2 <= kb[0] - ka[-1] <= 4:
        return False
    gap = max(1, kb[0] - ka[-1])
    start, last = b.center(kb[0]), a.center(ka[-1])
    ahead = last + _last_velocity(a, ka[-1] + 1) * (kb[0] - ka[-1])
    near_last = float(np.linalg.norm(start - last)) <= max_jump * width * gap
    return near_last or float(np.linalg.norm(start - ahead)) <= ahead_tol * width * gap


def bodies(tracks: list[Track], width: int) -> list[Track]:
    """Tracks joined into items: the pieces that move as one body (`rigid_group`) and the tracks that take
    over from one another (`_continues`); each item's largest piece names it. A take-over never joins two
    items that are both seen in more than the two frames a take-over may share (a short piece that could
    continue either of two items seen side by side would otherwise chain them into one)."""
    root = list(range(len(tracks)))
    seen = [{k for k, d in enumerate(t.dets) if d is not None} for t in tracks]  # per root: frames its item shows in

    def find(i: int) -> int:
        while root[i] != i:
            i = root[i]
        return i

    def join(i: int, j: int, handover: bool) -> None:
        ri, rj = find(i), find(j)
        if ri == rj or (handover and len(seen[ri] & seen[rj]) > 2):
            return
        root[rj] = ri
        seen[ri] |= seen[rj]

    for i in range(len(tracks)):
        for j in rigid_group(tracks, i, width)[1:]:
            join(i, j, False)
        for j in range(len(tracks)):
            if j != i and _continues(tracks[i], tracks[j], width):
                join(i, j, True)
    groups: dict[int, list[int]] = {}
    for i in range(len(tracks)):
        groups.setdefault(find(i), []).append(i)
    size = [sum(d.area for d in t.dets if d is not None) for t in tracks]
    return [merged_track(tracks, sorted(g, key=lambda i: -size[i])) for g in groups.values()]


def _hidden_behind(item: Track, k: int, items: list[Track]) -> bool:
    """True when an item unseen in frame k lies where another item, seen in frame k and in the frame the
    item was last seen, covers half of its last box: where it was, anywhere on the way its last velocity
    would have carried it since, or carried along with that other item (it went behind something that was
    already there, which may have moved on with it or with the camera)."""
    last = next((f for f in range(k - 1, -1, -1) if item.dets[f] is not None), None)
    if last is None:
        return False
    height, width = item.dets[last].mask.shape
    step = _last_velocity(item, last + 1) * (k - last)  # (2,) pixels it would have moved by frame k

    def covered(o: Track, shift: np.ndarray) -> bool:
        b = item.dets[last].box
        x0, x1 = (int(np.clip(round(v + shift[0]), 0, width)) for v in (b[0], b[2]))
        y0, y1 = (int(np.clip(round(v + shift[1]), 0, height)) for v in (b[1], b[3]))
        return x1 > x0 and y1 > y0 and o.dets[k].mask[y0:y1, x0:x1].mean() >= 0.5

    for o in items:
        if o is item or o.dets[k] is None or o.dets[last] is None:
            continue
        shifts = [share * step for share in np.linspace(0.0, 1.0, 5)] + [o.center(k) - o.center(last)]
        if any(covered(o, sh) for sh in shifts):
            return True
    return False


def _full_view_shapes(t: Track) -> list[str]:
    """Shapes of an item's sightings that show at least FULL_VIEW of its median area (a half-hidden item or a
    piece of one does not show its shape)."""
    dets = [d for d in t.dets if d is not None]
    med = float(np.median([d.area for d in dets]))
    return [d.shape for d in dets if d.area >= FULL_VIEW * med]


def score_identity(frames: Sequence[Any], settings: DetectSettings | None = None, model: ShapeModel | None = None,
                   tracks: list[Track] | None = None) -> VideoScore:
    """Items keep colour and shape through the clip: for each item seen in the first frame that shows any
    (items may fall into view; none before the clip's second half fails), with pieces and broken tracks
    joined (see `bodies`), the share of the frames from there on it is found in (same colour, near its last
    position) or hidden behind another item, times the share of its full views showing its usual shape."""  # fmt: skip
    imgs = frames_array(frames)
    tracks = tracks if tracks is not None else track(imgs, settings, model)
    t_count, width = len(imgs), imgs[0].shape[1]
    items = bodies(tracks, width)
    start = next((k for k in range(t_count) if any(t.dets[k] is not None for t in items)), None)
    if start is None or start >= t_count // 2:
        return VideoScore(0.0, False, {"objects": 0})
    first = [t for t in items if t.dets[start] is not None]
    seen, same = [], []
    for t in first:
        shown = [t.dets[k] is not None or _hidden_behind(t, k, items) for k in range(start, t_count)]
        seen.append(float(np.mean(shown)))
        shapes = _full_view_shapes(t)
        same.append(max(shapes.count(x) for x in set(shapes)) / len(shapes))
    score = float(np.mean(seen) * np.mean(same))
    newcomers = sum(1 for t in items if t.dets[start] is None and t.seen >= t_count // 2)
    return VideoScore(score, score >= 0.8, {"objects": len(first), "seen": float(np.mean(seen)),
                                            "shape_kept": float(np.mean(same)), "new_objects": newcomers})  # fmt: skip


def score_first_frame(frames: Sequence[Any], image: Any, tol: float = 8.0) -> VideoScore:
    """Image-to-video: share of pixels of the first frame within `tol` of the input image."""
    f0 = frames_array(frames)[0]
    img = to_array(image)
    if img.shape != f0.shape:
        raise RequestError(f"the input image is {img.shape[1]}x{img.shape[0]}, the frames {f0.shape[1]}x{f0.shape[0]}")
    share = float((np.abs(f0 - img).max(axis=2) <= tol).mean())
    return VideoScore(share, share >= 0.95, {"pixels_within_tol": share})


def _path_distance(a: Track, b: Track, width: int) -> float:
    """Mean distance (image widths) between two tracks' box centres over the frames both are seen in
    (infinite when that is under half the clip)."""
    d = [np.linalg.norm(a.center(k) - b.center(k)) for k in range(len(a.dets)) if a.dets[k] is not None and b.dets[k] is not None]
    return float(np.mean(d)) / width if len(d) >= max(1, len(a.dets) // 2) else math.inf


def _shows_color(t: Track, frames: list[np.ndarray], color: str) -> bool:
    """True when an item shows a colour: as its name, or, for white or gray (which a region's name gives
    way to whenever a chromatic colour covers a good share of it, as highlights read white or gray), as
    the colour most of its pixels carry over the clip (a two-coloured item painted mostly gray)."""
    if t.color == color:
        return True
    if COLOR_NAMES.index(color) not in NEUTRAL_INDEX:
        return False
    px = np.concatenate([frames[k][d.mask] for k, d in enumerate(t.dets) if d is not None])  # (N, 3)
    return COLOR_NAMES[int(np.bincount(name_colors(px), minlength=len(COLOR_NAMES)).argmax())] == color


def _leans_on_twin(t: Track, items: list[Track]) -> bool:
    """True when an item touches a larger item of its colour in every frame it is seen: a piece that may be
    part of that one (a pattern stripe of its colour beside it), not an item that shows on its own."""
    area = lambda u: sum(d.area for d in u.dets if d is not None)
    grown = {k: dilate(dilate(d.mask)) for k, d in enumerate(t.dets) if d is not None}  # 2 px around each sighting
    own = area(t)

    def leans(u: Track) -> bool:
        return all(u.dets[k] is not None and (g & u.dets[k].mask).any() for k, g in grown.items())

    return any(u is not t and u.color == t.color and area(u) > own and leans(u) for u in items)


def score_trajectory(frames: Sequence[Any], source: Sequence[Any], settings: DetectSettings | None = None,
                     model: ShapeModel | None = None, limit: float = 0.05,
                     recolor: dict[str, str] | None = None) -> VideoScore:
    """Video-to-video: each item of the source (`bodies`, seen in half its frames, less those that only ever
    show touching a larger one of their colour: `_leans_on_twin`) is paired with the output
    item whose path lies nearest (any colour; each output object pairs once); the mean path distance (image
    widths) per pair gives 1 - distance / (4 * limit), and every pair must stay within `limit`. With
    `recolor` (source colour -> asked colour), each pair must also show the asked colour
    (`_shows_color`)."""  # fmt: skip
    out, src = frames_array(frames), frames_array(source)
    if len(out) != len(src) or out[0].shape != src[0].shape:
        raise RequestError("the output clip must have the source clip's frame count and size")
    width = src[0].shape[1]
    ts = [t for t in bodies(track(src, settings, model), width) if t.seen >= len(src) // 2]
    ts = [t for t in ts if not _leans_on_twin(t, ts)]
    to = bodies(track(out, settings, model), width)
    if not ts:
        return VideoScore(0.0, False, {"distance": None, "objects": 0})
    cost = np.array([[_path_distance(t, u, width) for u in to] for t in ts]).reshape(len(ts), len(to))
    pairs: dict[int, int] = {}
    for flat in np.argsort(cost, axis=None):
        i, j = divmod(int(flat), max(len(to), 1))
        if np.isfinite(cost[i, j]) and i not in pairs and j not in pairs.values():
            pairs[i] = j
    dists = [cost[i, pairs[i]] if i in pairs else 1.0 for i in range(len(ts))]
    score = float(np.mean([np.clip(1.0 - d / (4 * limit), 0.0, 1.0) for d in dists]))
    values: dict[str, Any] = {"distance": float(np.mean(dists)), "worst": float(np.max(dists)), "objects": len(ts)}
    ok = max(dists) <= limit
    if recolor is not None:
        hits = [i in pairs and _shows_color(to[pairs[i]], out, recolor.get(t.color, t.color))
                for i, t in enumerate(ts)]  # fmt: skip
        values["colors"] = float(np.mean(hits))
        ok = ok and all(hits)
    return VideoScore(score, bool(ok), values)
