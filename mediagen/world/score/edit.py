"""Scores of edits: inpainting, outpainting and image-to-image, from the input, the output and the prompt.

- inpaint: the share of pixels outside the mask left exactly as they were, and whether the object the
  prompt asks for is detected inside the mask;
- outpaint: the share of the original kept exactly at its offset, and seam continuity: the colour jump
  across each seam relative to the jumps between neighbouring pixel columns (rows) next to it;
- image-to-image: layout kept (edge F1 between input and output near their objects) against prompt
  adherence (GenEval rule); where the prompt asks for a shape the input does not show, the outline the edge
  F1 compares is what the edit must change, so there the layout is also kept when every object of the
  input still has one of the output on its box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mediagen.errors import RequestError
from mediagen.world.score.control import edge_f1, edge_map
from mediagen.world.score.detect import (
    Detection,
    DetectSettings,
    ShapeModel,
    detect_objects,
    dilate,
    segment,
    to_array,
)
from mediagen.world.score.geneval import check_record, judge

SEAM_LIMIT = 2.0  # seam ratio above which a seam counts as visible (ground-truth renders stay below)
KEEP_LIMIT = 0.999  # share of pixels that must be kept exactly
PLACE_IOU = 0.5  # box overlap at which an object of an i2i output stands where one of the input stood


def _mask_array(mask: Any, shape: tuple[int, int]) -> np.ndarray:
    """A mask (PIL, bool or 0..1 / 0..255 array) as float (H, W) in 0..1, checked against the image size."""
    m = np.asarray(mask.convert("L") if hasattr(mask, "convert") else mask, dtype=np.float64)
    if m.ndim == 3:
        m = m.mean(axis=2)
    if m.shape != shape:
        raise RequestError(f"mask is {m.shape[1]}x{m.shape[0]} but the image is {shape[1]}x{shape[0]}: resize the mask")
    return m / 255.0 if m.max() > 1.0 else m


def kept_fraction(a: np.ndarray, b: np.ndarray, where: np.ndarray, tol: float = 0.0) -> float:
    """Share of pixels in `where` (H, W) whose RGB values in a and b (H, W, 3) differ by at most `tol`."""
    if not where.any():
        return 1.0
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64)).max(axis=2)
    return float((diff[where] <= tol).mean())


def _found_inside(dets: list[Detection], region: np.ndarray, share: float = 0.5) -> list[Detection]:
    """Detections with at least `share` of their pixels inside a region."""
    return [d for d in dets if (d.mask & region).sum() >= share * d.area]


@dataclass
class EditScore:
    """Verdict on one edit."""

    correct: bool
    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary."""
        return {"correct": self.correct, **self.values}


def score_inpaint(original: Any, result: Any, mask: Any, meta: dict[str, Any] | None = None, tol: float = 0.0,
                  settings: DetectSettings | None = None, model: ShapeModel | None = None) -> EditScore:
    """Pixels outside the mask (value 0) kept, and the record's objects (if given) found inside the mask."""  # fmt: skip
    a, b = to_array(original), to_array(result)
    if a.shape != b.shape:
        raise RequestError(f"inpaint result is {b.shape[1]}x{b.shape[0]}, the original {a.shape[1]}x{a.shape[0]}")
    m = _mask_array(mask, a.shape[:2])
    kept = kept_fraction(a, b, m <= 0.0, tol)
    values: dict[str, Any] = {"kept": kept}
    ok = kept >= KEEP_LIMIT
    if meta is not None:
        check_record(meta)
        dets = _found_inside(detect_objects(b, settings, model), m > 0.5)
        verdict = judge(meta, dets)
        values.update(content=verdict.correct, reasons=verdict.reasons,
                      detections=[d.to_dict() for d in dets])  # fmt: skip
        ok = ok and verdict.correct
    return EditScore(ok, values)


def seam_ratio(image: np.ndarray, pos: int, axis: int, band: int = 4) -> float:
    """Colour jump across the seam between index pos-1 and pos along `axis` (1 = columns, 0 = rows) over
    the jump between neighbouring lines up to `band` lines either side (1 = no discontinuity); medians
    along the seam, so an object edge that happens to lie on it does not count as a seam."""
    img = image.astype(np.float64)
    if axis == 0:
        img = img.transpose(1, 0, 2)
    w = img.shape[1]
    if not 1 <= pos < w:
        raise ValueError(f"seam at {pos} is outside 1..{w - 1}")
    jumps = np.linalg.norm(np.diff(img, axis=1), axis=2)  # (L, W - 1) jump between line j and j + 1
    near = [j for j in range(pos - 1 - band, pos + band) if 0 <= j < w - 1 and j != pos - 1]
    seam = float(np.median(jumps[:, pos - 1]))
    base = float(np.median(jumps[:, near].mean(axis=1))) if near else 0.0
    return (seam + 1.0) / (base + 1.0)


def score_outpaint(original: Any, result: Any, extend: tuple[int, int, int, int], meta: dict[str, Any] | None = None,
                   tol: float = 0.0, settings: DetectSettings | None = None,
                   model: ShapeModel | None = None) -> EditScore:
    """Original kept exactly at offset (left, top), seams continuous, and the record (if given) satisfied."""  # fmt: skip
    a, b = to_array(original), to_array(result)
    left, top, right, bottom = (int(v) for v in extend)
    h, w = a.shape[:2]
    if b.shape[:2] != (h + top + bottom, w + left + right):
        raise RequestError(
            f"outpaint result is {b.shape[1]}x{b.shape[0]}; expected {w + left + right}x{h + top + bottom} "
            f"for an original of {w}x{h} extended by {left},{top},{right},{bottom}"
        )
    inner = b[top : top + h, left : left + w]
    kept = kept_fraction(a, inner, np.ones((h, w), dtype=bool), tol)
    seams = {}
    if left:
        seams["left"] = seam_ratio(b[top : top + h], left, axis=1)
    if right:
        seams["right"] = seam_ratio(b[top : top + h], left + w, axis=1)
    if top:
        seams["top"] = seam_ratio(b[:, left : left + w], top, axis=0)
    if bottom:
        seams["bottom"] = seam_ratio(b[:, left : left + w], top + h, axis=0)
    worst = max(seams.values()) if seams else 1.0
    values: dict[str, Any] = {"kept": kept, "seams": seams, "seam": worst}
    ok = kept >= KEEP_LIMIT and worst <= SEAM_LIMIT
    if meta is not None:
        check_record(meta)
        verdict = judge(meta, detect_objects(b, settings, model))
        values.update(content=verdict.correct, reasons=verdict.reasons)
        ok = ok and verdict.correct
    return EditScore(ok, values)


def layout_f1(source: np.ndarray, result: np.ndarray, settings: DetectSettings | None = None) -> float:
    """Edge F1 (tolerance 2 px) of two images, counted only near the objects of either (the horizon and
    other background edges would make any two scenes agree)."""
    near = np.zeros(source.shape[:2], dtype=bool)
    for img in (source, result):
        for m in segment(img, settings).masks:
            near |= m
    for _ in range(3):
        near = dilate(near)
    return edge_f1(edge_map(result) & near, edge_map(source) & near, tol=2)


def _box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(union, 1e-9)


def reshaped_in_place(source: list[Detection], result: list[Detection], meta: dict[str, Any]) -> bool:
    """True when the prompt asks for a shape the source's objects do not show (an edit that must change an
    outline, which edge agreement cannot credit) and the output keeps the source's placement: as many objects,
    each of the source's with one of the output on its box (IoU at least PLACE_IOU, one to one)."""
    if not {inc["class"] for inc in meta["include"]} - {d.shape for d in source}:
        return False
    if not source or len(result) != len(source):
        return False
    free = list(range(len(result)))
    for d in sorted(source, key=lambda d: -d.area):
        j = max(free, key=lambda j: _box_iou(d.box, result[j].box))
        if _box_iou(d.box, result[j].box) < PLACE_IOU:
            return False
        free.remove(j)
    return True


def score_i2i(source: Any, result: Any, meta: dict[str, Any], settings: DetectSettings | None = None,
              model: ShapeModel | None = None, layout_limit: float = 0.5) -> EditScore:
    """Layout kept (edge F1 of output against input, tolerance 2 px, or for a shape edit every object left
    in place: `reshaped_in_place`) and prompt adherence (GenEval rule)."""  # fmt: skip
    a, b = to_array(source), to_array(result)
    if a.shape != b.shape:
        raise RequestError(f"i2i result is {b.shape[1]}x{b.shape[0]}, the source {a.shape[1]}x{a.shape[0]}")
    check_record(meta)
    layout = layout_f1(a, b, settings)
    found = detect_objects(b, settings, model)
    verdict = judge(meta, found)
    in_place = layout < layout_limit and reshaped_in_place(detect_objects(a, settings, model), found, meta)
    values = {"layout": layout, "in_place": in_place, "adherence": verdict.correct, "reasons": verdict.reasons}
    return EditScore(verdict.correct and (layout >= layout_limit or in_place), values)
