"""Agreement of a generated image with the control map it was conditioned on, by image analysis.

- edge: edges of the image (CIELAB gradient, thinned) against the edge map: F1 within a pixel tolerance;
- depth: objects stand out of the depth map as pixels nearer than the background of their row; the
  image's regions must cover each of them (IoU per object, times the share of the image's foreground that
  lies on one), discounted when the image's objects do not keep their order in depth
  (box bottoms: lower on the ground plane is nearer) against the map's disparity (pair agreement);
- seg: classes decoded from the ADE-like palette; each connected object segment of the map is matched to
  the image's regions lying mostly inside it (touching objects of one class form one segment), or else to
  the region with the best IoU, and their shapes (or, for several regions, their union's) must match the
  map's class;
- pose: keypoints decoded from the OpenPose drawing must lie on the figure's silhouette, and the figure's
  silhouette (the regions following the skeleton, less solids it only crosses) must follow the skeleton.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from mediagen.errors import RequestError
from mediagen.world.figures import OPENPOSE_COLORS
from mediagen.world.render import SEMANTIC_CLASSES, SEMANTIC_PALETTE
from mediagen.world.score.detect import (
    DetectSettings,
    ShapeModel,
    analyze,
    dilate,
    label_components,
    load_shape_model,
    mask_box,
    segment,
    shape_features,
    srgb_to_lab,
    to_array,
)
from mediagen.world.spec import SHAPES

LIMITS = MappingProxyType({"edge": 0.7, "depth": 0.5, "seg": 0.5, "pose": 0.7})  # pass marks (ground-truth renders stay above)
SOLID_SURE = 0.9  # a region the shape classifier names a solid this surely ...
SOLID_CROSSED = 0.6  # ... is part of a figure only when this share of it lies near the skeleton


@dataclass
class ControlScore:
    """Agreement of one image with one control map."""

    kind: str
    score: float
    correct: bool
    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary."""
        return {"kind": self.kind, "score": self.score, "correct": self.correct, **self.values}


# ----------------------------------------------------------------------------- edges


def edge_map(image: Any, threshold: float = 10.0) -> np.ndarray:
    """Thin edges (H, W) bool: CIELAB Sobel magnitude above `threshold` that is a local maximum across the edge."""
    lab = srgb_to_lab(to_array(image))
    pad = np.pad(lab, ((1, 1), (1, 1), (0, 0)), mode="edge")
    gx = (pad[:-2, 2:] + 2 * pad[1:-1, 2:] + pad[2:, 2:] - pad[:-2, :-2] - 2 * pad[1:-1, :-2] - pad[2:, :-2]) / 4.0
    gy = (pad[2:, :-2] + 2 * pad[2:, 1:-1] + pad[2:, 2:] - pad[:-2, :-2] - 2 * pad[:-2, 1:-1] - pad[:-2, 2:]) / 4.0
    mag = np.sqrt((gx**2).sum(-1) + (gy**2).sum(-1))  # (H, W)
    horiz = np.abs(gx).sum(-1) >= np.abs(gy).sum(-1)  # the edge runs vertically: compare left/right
    m = np.pad(mag, 1, mode="edge")
    left, right, up, down = m[1:-1, :-2], m[1:-1, 2:], m[:-2, 1:-1], m[2:, 1:-1]
    peak = np.where(horiz, (mag >= left) & (mag >= right), (mag >= up) & (mag >= down))
    return peak & (mag > threshold)


def _grow(mask: np.ndarray, steps: int) -> np.ndarray:
    """Dilate `steps` times with a 3x3 square."""
    for _ in range(steps):
        mask = dilate(mask)
    return mask


def edge_f1(pred: np.ndarray, ref: np.ndarray, tol: int = 2) -> float:
    """F1 of two edge maps where a pixel matches when the other map has an edge within `tol` pixels."""
    pred, ref = np.asarray(pred) > 0, np.asarray(ref) > 0
    if not pred.any() and not ref.any():
        return 1.0
    if not pred.any() or not ref.any():
        return 0.0
    precision = float((pred & _grow(ref, tol)).sum() / pred.sum())
    recall = float((ref & _grow(pred, tol)).sum() / ref.sum())
    return 2 * precision * recall / max(precision + recall, 1e-9)


def _map_array(control: Any, shape: tuple[int, int], kind: str) -> np.ndarray:
    """A control map as float (H, W, 3) 0..255, checked against the image size."""
    a = to_array(control)
    if a.shape[:2] != shape:
        raise RequestError(f"{kind} map is {a.shape[1]}x{a.shape[0]} but the image is {shape[1]}x{shape[0]}: resize it")
    return a


def score_edge(image: Any, control: Any, tol: int = 2) -> ControlScore:
    """Edge agreement: F1 of the image's edges against the edge map (white lines on black)."""
    img = to_array(image)
    ref = _map_array(control, img.shape[:2], "edge").mean(axis=2) > 127
    f1 = edge_f1(edge_map(img), ref, tol)
    return ControlScore("edge", f1, f1 >= LIMITS["edge"], {"f1": f1})


# ----------------------------------------------------------------------------- depth


def depth_objects(disparity: np.ndarray, margin: float = 2.5, border: float = 1 / 16) -> np.ndarray:
    """Pixels (H, W) of a disparity map (0..255, near = bright) that stand nearer than the background of
    their row: a plane (floor, wall, sky) interpolated between the row's left and right border strips, or
    the farther strip where the two disagree (an object covers one)."""
    w = disparity.shape[1]
    b = max(2, round(w * border))
    left = np.median(disparity[:, :b], axis=1)  # (H,)
    right = np.median(disparity[:, w - b :], axis=1)
    t = (np.arange(w) + 0.5 - b / 2) / max(w - b, 1)  # 0 at the left strip's centre, 1 at the right one's
    plane = left[:, None] + (right - left)[:, None] * t[None, :]  # (H, W)
    bg = np.where((np.abs(left - right) < 8.0)[:, None], plane, np.minimum(left, right)[:, None])
    return disparity > bg + margin


def _pair_order(near_map: list[float], near_img: list[float]) -> float:
    """Share of object pairs ordered alike by two nearness measures (1.0 when fewer than two objects)."""
    pairs = [(i, j) for i in range(len(near_map)) for j in range(i + 1, len(near_map))
             if abs(near_map[i] - near_map[j]) > 8.0]  # fmt: skip
    if not pairs:
        return 1.0
    agree = sum((near_map[i] - near_map[j]) * (near_img[i] - near_img[j]) > 0 for i, j in pairs)
    return agree / len(pairs)


def score_depth(image: Any, control: Any, settings: DetectSettings | None = None) -> ControlScore:
    """Depth agreement: silhouette IoU with the map's objects, and depth order from ground-plane position."""
    img = to_array(image)
    disp = _map_array(control, img.shape[:2], "depth").mean(axis=2)
    objs = depth_objects(disp)
    seg = segment(img, settings)
    parts, n_parts = label_components(objs)
    ious, used = [], np.zeros(img.shape[:2], dtype=bool)
    for p in range(1, n_parts + 1):
        ref = parts == p
        if ref.sum() < 6:
            continue
        got = np.zeros_like(ref)
        for m in seg.masks:
            if (m & ref).sum() >= 0.5 * m.sum():
                got |= m
        used |= got
        ious.append(float((got & ref).sum() / (got | ref).sum()))
    fg = np.zeros_like(objs)
    for m in seg.masks:
        fg |= m
    precision = float((used & fg).sum() / fg.sum()) if fg.any() else 1.0
    iou = float(np.mean(ious)) * precision if ious else (1.0 if not fg.any() else 0.0)
    near_map, near_img, seen = [], [], set()
    for m in sorted(seg.masks, key=lambda m: -int(m.sum())):  # one region per object of the map
        inside = m & objs
        if inside.sum() < 0.5 * m.sum():
            continue
        ids, counts = np.unique(parts[inside], return_counts=True)
        part = int(ids[np.argmax(counts)])
        if part in seen:
            continue
        seen.add(part)
        near_map.append(float(np.median(disp[inside])))
        near_img.append(mask_box(m)[3])  # box bottom: lower in the image = nearer on the floor
    order = _pair_order(near_map, near_img)
    score = iou * (0.75 + 0.25 * order)
    return ControlScore("depth", score, score >= LIMITS["depth"], {"iou": iou, "order": order})


# ----------------------------------------------------------------------------- segmentation


def decode_seg(control: np.ndarray) -> np.ndarray:
    """Class index (H, W) into SEMANTIC_CLASSES of a palette-coloured segmentation map (nearest colour)."""
    pal = np.asarray(SEMANTIC_PALETTE, dtype=np.float64)  # (K, 3)
    d = ((control[..., None, :] - pal) ** 2).sum(-1)  # (H, W, K)
    return np.argmin(d, axis=-1)


def _match_segment(ref: np.ndarray, name: str, detections: list, img: np.ndarray,
                   model: ShapeModel) -> tuple[float, bool]:
    """IoU of one connected segment of the map (H, W) with the image's regions, and whether they carry its
    class: the regions lying mostly inside it (touching objects of one class form one segment), else the
    single region overlapping it best. Several regions inside carry it when most of their area does, or
    when their union's silhouette and shading name it (one patterned object the detector cut apart)."""
    inside = [d for d in detections if (d.mask & ref).sum() >= 0.5 * d.area]
    if not inside:
        best = max(detections, key=lambda d: (d.mask & ref).sum() / (d.mask | ref).sum(), default=None)
        inside = [best] if best is not None and (best.mask & ref).any() else []
    if not inside:
        return 0.0, False
    got = np.any([d.mask for d in inside], axis=0)
    right = sum(d.area for d in inside if d.shape == name)
    agree = right >= 0.5 * sum(d.area for d in inside)
    if not agree and len(inside) > 1:
        rest = np.zeros_like(ref)  # (H, W) the other regions, where the union may be cut off
        for d in detections:
            if not any(d is e for e in inside):
                rest |= d.mask
        agree = model.classes[int(np.argmax(model.probs(shape_features(got, img, rest))[0]))] == name
    return float((got & ref).sum() / (got | ref).sum()), agree


def score_seg(image: Any, control: Any, settings: DetectSettings | None = None,
              model: ShapeModel | None = None) -> ControlScore:
    """Segmentation agreement: mean IoU of the map's object regions with the image's regions, class-checked."""  # fmt: skip
    img = to_array(image)
    cls = decode_seg(_map_array(control, img.shape[:2], "seg"))
    model = model or load_shape_model()
    an = analyze(img, settings, model)
    ious, classes = [], []
    for k, name in enumerate(SEMANTIC_CLASSES):
        if name not in SHAPES and name != "person":
            continue
        lab, n = label_components(cls == k)
        for i in range(1, n + 1):
            ref = lab == i
            if ref.sum() >= 6:
                iou, agree = _match_segment(ref, name, an.detections, an.image, model)
                ious.append(iou)
                classes.append(agree)
    if not ious:
        fg = sum(d.area for d in an.detections)
        score = 1.0 if fg == 0 else 0.0
        return ControlScore("seg", score, score >= LIMITS["seg"], {"miou": score, "class_agreement": score})
    miou = float(np.mean(ious))
    class_acc = float(np.mean(classes))
    score = miou * class_acc
    return ControlScore("seg", score, score >= LIMITS["seg"], {"miou": miou, "class_agreement": class_acc})


# ----------------------------------------------------------------------------- pose


def decode_pose(control: np.ndarray, tol: float = 40.0) -> list[tuple[int, float, float]]:
    """Keypoints (OpenPose index, x, y) drawn as full-intensity dots in an OpenPose map (H, W, 3)."""
    out = []
    for k, c in enumerate(OPENPOSE_COLORS):
        hit = np.linalg.norm(control - np.asarray(c, dtype=np.float64), axis=2) < tol
        lab, n = label_components(hit)
        for i in range(1, n + 1):
            ys, xs = np.nonzero(lab == i)
            out.append((k, float(xs.mean()) + 0.5, float(ys.mean()) + 0.5))
    return out


def score_pose(image: Any, control: Any, settings: DetectSettings | None = None, reach: int = 2,
               model: ShapeModel | None = None) -> ControlScore:
    """Pose agreement: share of the map's keypoints on the figure's silhouette (within `reach` pixels),
    times the share of the figure's silhouette lying near the drawn skeleton. The figure is the image's
    regions that follow the skeleton, less a solid the skeleton merely crosses (a figure behind a cube)."""
    img = to_array(image)
    pose = _map_array(control, img.shape[:2], "pose")
    kps = decode_pose(pose)
    skeleton = pose.max(axis=2) > 30
    if not kps:
        return ControlScore("pose", 0.0, False, {"keypoints": 0.0, "silhouette": 0.0, "found": 0})
    h, w = img.shape[:2]
    near = _grow(skeleton, max(2, round(0.03 * h)))
    figure = np.zeros((h, w), dtype=bool)
    for d in analyze(img, settings, model).detections:
        share = (d.mask & near).sum() / d.area
        solid = max(p for c, p in d.shape_probs.items() if c != "person")
        if share >= 0.3 and (share >= SOLID_CROSSED or solid < SOLID_SURE):
            figure |= d.mask
    reach_mask = _grow(figure, reach)
    hits = [reach_mask[min(int(y), h - 1), min(int(x), w - 1)] for _, x, y in kps]
    kp_rate = float(np.mean(hits))
    sil = float((figure & near).sum() / figure.sum()) if figure.any() else 0.0
    score = kp_rate * sil
    return ControlScore("pose", score, score >= LIMITS["pose"], {"keypoints": kp_rate, "silhouette": sil,
                                                                  "found": len(kps)})  # fmt: skip


SCORERS = MappingProxyType({"edge": score_edge, "depth": score_depth, "seg": score_seg, "pose": score_pose})


def score_control(kind: str, image: Any, control: Any, **kw: Any) -> ControlScore:
    """Score an image against a control map of the given kind (edge, depth, seg, pose)."""
    if kind not in SCORERS:
        raise RequestError(f"unknown control kind {kind!r}; expected one of {', '.join(SCORERS)}")
    return SCORERS[kind](image, control, **kw)
