"""Scores of generated clips by tracking detected objects across frames.

- motion: each moving item the prompt states (colour, shape, direction, speed) is tracked; the direction of
  its ground point over the stated segment must agree with the stated one (`direction_agrees`: the
  captions' thresholds with a margin either way), and its speed class (image widths per second) is
  reported;
- identity: a tracked object keeps its colour and shape in every frame it is seen, and the number of
  objects stays the same;
- first frame (image-to-video): the first frame reproduces the input image;
- trajectory (video-to-video): every object of the input clip follows the same path in the output.
Directions are judged in the image plane, so clips with a camera pan need their pan removed first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mediagen.errors import RequestError
from mediagen.world.clip_captions import DOMINANCE, MIN_DISPLACEMENT, SPEED_CLASSES, direction_of
from mediagen.world.score.detect import Detection, DetectSettings, ShapeModel, detect_objects, to_array


@dataclass
class Track:
    """One object followed through a clip: its detection in each frame (None where not seen)."""

    color: str
    shape: str
    dets: list[Detection | None] = field(repr=False)

    def bottom(self, k: int) -> np.ndarray | None:
        """Ground point of the object's base centre in frame k (None where not seen): box centre x, and the
        mean of the silhouette's lowest rows at its left and right ends (the base's side points, at the
        centre's depth whatever the object's turn; the lowest pixel would move as a corner swings round)."""
        d = self.dets[k]
        if d is None:
            return None
        cols = np.flatnonzero(d.mask.any(axis=0))
        edge = max(1, round(0.15 * len(cols)))
        lows = [np.flatnonzero(d.mask[:, c])[-1] + 1.0 for c in np.concatenate([cols[:edge], cols[-edge:]])]
        return np.array([(d.box[0] + d.box[2]) / 2.0, float(np.mean(lows))])

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


def track(frames: Sequence[Any], settings: DetectSettings | None = None, model: ShapeModel | None = None,
          max_jump: float = 0.2) -> list[Track]:
    """Follow every detected object: link each frame's detections to the tracks of the same colour whose last
    position is nearest (within `max_jump` of the image width); unmatched detections start new tracks."""  # fmt: skip
    imgs = frames_array(frames)
    t_count = len(imgs)
    width = imgs[0].shape[1]
    tracks: list[Track] = []
    last: list[tuple[int, np.ndarray]] = []  # per track: (frame, centre)
    for k, img in enumerate(imgs):
        dets = detect_objects(img, settings, model)
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
    for tr in tracks:  # the shape a track shows most often names it
        shapes = [d.shape for d in tr.dets if d is not None]
        tr.shape = max(set(shapes), key=shapes.count)
    return tracks


def direction_agrees(want: dict[str, Any], du: float, dv: float, width: int) -> bool:
    """A stated component must show with its sign (at half the stating threshold), and an unstated one must
    not show clearly (at 1.5 times it): motions near the captions' own thresholds are not held against."""
    lim = MIN_DISPLACEMENT * width
    for key, d, other, pos in (("horizontal", du, dv, "right"), ("depth", dv, du, "toward")):
        stated = want.get(key)
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


def _find_track(tracks: list[Track], attrs: dict[str, Any], segment: Sequence[int]) -> Track | None:
    """The track with the stated colour (and shape, when one has it) that travels farthest during the
    segment (among several alike objects, the prompt names the one that moves)."""
    same = [t for t in tracks if t.color == attrs.get("color")]
    exact = [t for t in same if t.shape == attrs.get("shape")]
    pool = exact or same
    a, b = int(segment[0]), int(segment[1])

    def travel(t: Track) -> float:
        pts = [t.center(k) for k in range(a, b + 1) if t.dets[k] is not None]
        return float(np.linalg.norm(pts[-1] - pts[0])) if len(pts) >= 2 else 0.0

    def rank(t: Track) -> tuple[int, float]:
        seen = sum(d is not None for d in t.dets[a : b + 1])
        return (seen >= 2, travel(t))

    return max(pool, key=rank) if pool else None


def _nearest_seen(tr: Track, k: int, step: int) -> int | None:
    """Frame nearest to k (moving by `step`) where the track is seen, staying inside the clip."""
    n = len(tr.dets)
    while 0 <= k < n:
        if tr.dets[k] is not None:
            return k
        k += step
    return None


@dataclass
class VideoScore:
    """Verdict on one clip."""

    score: float
    correct: bool
    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary."""
        return {"score": self.score, "correct": self.correct, **self.values}


def score_motion(frames: Sequence[Any], motions: list[dict[str, Any]], fps: float,
                 settings: DetectSettings | None = None, model: ShapeModel | None = None,
                 tracks: list[Track] | None = None) -> VideoScore:
    """Share of stated motions (`motion_specs` records with a direction) whose tracked direction matches;
    speed classes are reported alongside."""  # fmt: skip
    imgs = frames_array(frames)
    width = imgs[0].shape[1]
    tracks = tracks if tracks is not None else track(imgs, settings, model)
    items = []
    for ms in motions:
        if not ms.get("direction") or not ms.get("segment"):
            continue
        want = ms["direction"]
        tr = _find_track(tracks, ms["attributes"], ms["segment"])
        got, speed, du, dv = None, None, 0.0, 0.0
        if tr is not None:
            a = _nearest_seen(tr, ms["segment"][0], 1)
            b = _nearest_seen(tr, ms["segment"][1], -1)
            if a is not None and b is not None and b > a:
                du, dv = (tr.bottom(b) - tr.bottom(a)).tolist()
                got = direction_of(du, dv, width)
                speed = speed_class(float(np.hypot(du, dv)), (b - a) / fps, width)
        ok = got is not None and direction_agrees(want, du, dv, width)
        items.append({"id": ms.get("id"), "expected": want, "found": got, "correct": ok,
                      "speed": speed, "expected_speed": ms.get("speed")})  # fmt: skip
    if not items:
        return VideoScore(1.0, True, {"items": []})
    score = float(np.mean([i["correct"] for i in items]))
    speed_ok = [i["speed"] == i["expected_speed"] for i in items if i["expected_speed"]]
    return VideoScore(score, score >= 0.999, {"items": items,
                                              "speed_agreement": float(np.mean(speed_ok)) if speed_ok else None})  # fmt: skip


def score_identity(frames: Sequence[Any], settings: DetectSettings | None = None, model: ShapeModel | None = None,
                   tracks: list[Track] | None = None) -> VideoScore:
    """Objects keep colour and shape through the clip: for each object seen in the first frame, the share of
    frames it is found in (same colour, near its last position) times the share of those showing its shape."""  # fmt: skip
    imgs = frames_array(frames)
    tracks = tracks if tracks is not None else track(imgs, settings, model)
    t_count = len(imgs)
    first = [t for t in tracks if t.dets[0] is not None]
    if not first:
        return VideoScore(0.0, False, {"objects": 0})
    seen, same = [], []
    for t in first:
        seen.append(t.seen / t_count)
        same.append(sum(d is not None and d.shape == t.shape for d in t.dets) / max(t.seen, 1))
    score = float(np.mean(seen) * np.mean(same))
    newcomers = sum(1 for t in tracks if t.dets[0] is None and t.seen >= t_count // 2)
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


def score_trajectory(frames: Sequence[Any], source: Sequence[Any], settings: DetectSettings | None = None,
                     model: ShapeModel | None = None, limit: float = 0.05) -> VideoScore:
    """Video-to-video: mean distance (in image widths) between each source object's path and the path of the
    output's object of the same colour nearest to it; 1 - distance / (4 * limit) as a score."""  # fmt: skip
    out, src = frames_array(frames), frames_array(source)
    if len(out) != len(src) or out[0].shape != src[0].shape:
        raise RequestError("the output clip must have the source clip's frame count and size")
    width = src[0].shape[1]
    ts, to = track(src, settings, model), track(out, settings, model)
    dists = []
    for t in [t for t in ts if t.seen >= len(src) // 2]:
        best = None
        for u in (u for u in to if u.color == t.color):
            d = [np.linalg.norm(t.center(k) - u.center(k)) for k in range(len(src))
                 if t.dets[k] is not None and u.dets[k] is not None]  # fmt: skip
            if len(d) >= len(src) // 2:
                m = float(np.mean(d)) / width
                best = m if best is None else min(best, m)
        dists.append(1.0 if best is None else best)
    if not dists:
        return VideoScore(0.0, False, {"distance": None})
    dist = float(np.mean(dists))
    score = float(np.clip(1.0 - dist / (4 * limit), 0.0, 1.0))
    return VideoScore(score, dist <= limit, {"distance": dist, "objects": len(dists)})
