"""Reference and subject fidelity: the main object of an output against the main object of a reference image.

The signature of an object is its CIELAB chroma histogram (a*, b*), its colour names with their shares
(the body colour and the pattern colour of a striped, checked or dotted object) and its shape. Fidelity is
0.5 * histogram intersection + 0.25 * colour-name agreement (body and pattern, with shares) + 0.25 * shape
agreement (the overlap of the two objects' shape probabilities: patterns make single labels unsure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mediagen.world.score.detect import (
    COLOR_NAMES,
    Detection,
    DetectSettings,
    ShapeModel,
    analyze,
    name_colors,
    srgb_to_lab,
)

HIST_BINS = 8
AB_RANGE = 100.0  # a*, b* histogram range: -AB_RANGE .. AB_RANGE
FIDELITY_LIMIT = 0.45  # ground-truth pairs of one subject stay above, pairs of two subjects below 0.32


@dataclass
class Signature:
    """What identifies one object."""

    hist: np.ndarray  # (B, B) normalised a*b* histogram
    names: dict[str, float]  # colour name -> share of the object's pixels
    shape: str
    shape_probs: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (no histogram)."""
        return {"shape": self.shape, "colors": {k: round(v, 3) for k, v in self.names.items()}}


def signature(image: np.ndarray, det: Detection) -> Signature:
    """Signature of one detected object in an image (H, W, 3) float."""
    px = image[det.mask]
    lab = srgb_to_lab(px)
    hist, _, _ = np.histogram2d(lab[:, 1], lab[:, 2], bins=HIST_BINS, range=[[-AB_RANGE, AB_RANGE]] * 2)
    hist /= max(hist.sum(), 1.0)
    counts = np.bincount(name_colors(px), minlength=len(COLOR_NAMES)) / max(len(px), 1)
    names = {COLOR_NAMES[i]: float(c) for i, c in enumerate(counts) if c >= 0.08}
    return Signature(hist, names, det.shape, dict(det.shape_probs))


def main_object(image: Any, settings: DetectSettings | None = None, model: ShapeModel | None = None):
    """(image array, largest object detection or None) of an image."""
    an = analyze(image, settings, model)
    objs = [d for d in an.detections if d.shape != "person"]
    return an.image, (max(objs, key=lambda d: d.area) if objs else None)


def _names_agreement(a: dict[str, float], b: dict[str, float]) -> float:
    """1 - half the L1 distance between two colour-name share vectors."""
    keys = set(a) | set(b)
    return 1.0 - 0.5 * sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in keys)


@dataclass
class FidelityScore:
    """Fidelity of an output's main object to a reference's."""

    score: float
    correct: bool
    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary."""
        return {"score": self.score, "correct": self.correct, **self.values}


def score_reference(result: Any, reference: Any, settings: DetectSettings | None = None,
                    model: ShapeModel | None = None) -> FidelityScore:
    """Colour histogram, colour-name (body + pattern) and shape agreement of the two main objects."""  # fmt: skip
    img_r, ref = main_object(reference, settings, model)
    img_o, out = main_object(result, settings, model)
    if ref is None or out is None:
        found = "reference" if ref is None else "output"
        return FidelityScore(0.0, False, {"reason": f"no object found in the {found}"})
    sr, so = signature(img_r, ref), signature(img_o, out)
    hist = float(np.minimum(sr.hist, so.hist).sum())
    names = _names_agreement(sr.names, so.names)
    shape = float(sum(min(p, so.shape_probs.get(k, 0.0)) for k, p in sr.shape_probs.items()))
    score = 0.5 * hist + 0.25 * names + 0.25 * shape
    return FidelityScore(score, score >= FIDELITY_LIMIT, {"histogram": hist, "colors": names, "shape": shape,
                                                          "reference": sr.to_dict(), "output": so.to_dict()})  # fmt: skip
