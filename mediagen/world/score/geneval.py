"""GenEval-style scoring of generated images from image analysis (Ghosh et al. 2023, "GenEval").

A prompt record is GenEval's `evaluation_metadata.jsonl` line in the world's vocabulary:
    {"tag": "position", "prompt": "a sphere left of a cube",
     "include": [{"class": "cube", "count": 1}, {"class": "sphere", "count": 1, "position": ["left of", 0]}]}
Tags: single_object, two_object, counting (with "exclude"), colors, position, color_attr. The rule follows
GenEval's `evaluate`: detections are the regions scoring at least 0.3 for a class (a region ambiguous
between two shapes is listed under both), the `count` most confident detections of each class are checked for colour and
relative position (box centres, margin 0.1 of the summed box sizes); excluded classes must not reach their
count. The overall score is the mean over tags of the per-tag accuracy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mediagen.errors import RequestError
from mediagen.world.captions import GENEVAL_TAGS, POSITION_THRESHOLD, relative_position
from mediagen.world.score.detect import Detection, DetectSettings, ShapeModel, detect_objects
from mediagen.world.spec import COLORS, SHAPES

RELATIONS = ("left of", "right of", "above", "below")
DETECT_THRESHOLD = 0.3  # a region counts as every class it scores at least this for (GenEval's threshold)


@dataclass
class GenevalResult:
    """Verdict on one image for one prompt record."""

    correct: bool
    reasons: list[str]
    detections: list[Detection] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary."""
        return {"correct": self.correct, "reasons": self.reasons, "detections": [d.to_dict() for d in self.detections]}


def check_record(meta: dict[str, Any]) -> None:
    """Raise RequestError when a prompt record is not in the world's GenEval vocabulary."""
    if not isinstance(meta, dict) or not isinstance(meta.get("include"), list) or not meta["include"]:
        raise RequestError(f"prompt record {meta!r}: needs an 'include' list of {{'class', 'count'}} entries")
    for key in ("include", "exclude"):
        for i, inc in enumerate(meta.get(key, [])):
            if inc.get("class") not in SHAPES:
                raise RequestError(f"{key}[{i}] class {inc.get('class')!r}: expected one of {', '.join(SHAPES)}")
            if "color" in inc and inc["color"] not in COLORS:
                raise RequestError(f"{key}[{i}] color {inc['color']!r}: expected one of {', '.join(COLORS)}")
            if "position" in inc:
                rel, idx = inc["position"]
                if rel not in RELATIONS or not (0 <= int(idx) < len(meta["include"])):
                    raise RequestError(f"{key}[{i}] position {inc['position']!r}: expected [relation, include index]")


def group_by_class(detections: Iterable[Detection], threshold: float = DETECT_THRESHOLD) -> dict[str, list[Detection]]:
    """Object detections by shape, most confident first: like GenEval's detector, a region is listed under
    every shape whose probability reaches `threshold` (figures are not objects)."""
    out: dict[str, list[tuple[float, Detection]]] = {}
    for d in detections:
        for shape, p in d.shape_probs.items():
            if shape in SHAPES and (p >= threshold or shape == d.shape):
                out.setdefault(shape, []).append((p, d))
    return {k: [d for _, d in sorted(v, key=lambda t: -t[0])] for k, v in out.items()}


def judge(meta: dict[str, Any], detections: list[Detection], threshold: float = POSITION_THRESHOLD) -> GenevalResult:
    """GenEval's correctness rule applied to detections."""
    objects = group_by_class(detections)
    correct, reasons = True, []
    matched: list[list[Detection] | None] = []
    for inc in meta.get("include", []):
        cls, count = inc["class"], int(inc.get("count", 1))
        found = objects.get(cls, [])[:count]
        ok = True
        if len(found) < count:
            ok = False
            reasons.append(f"expected {cls}>={count}, found {len(found)}")
        else:
            if "color" in inc:
                colors = [d.color for d in found]
                if colors.count(inc["color"]) < count:
                    ok = False
                    reasons.append(f"expected {inc['color']} {cls}>={count}, found {colors}")
            if "position" in inc and ok:
                rel, idx = inc["position"]
                targets = matched[int(idx)] if int(idx) < len(matched) else None
                if not targets:
                    ok = False
                    reasons.append(f"no target for {cls} to be {rel}")
                else:
                    for d in found:
                        for t in targets:
                            got = relative_position(d.box, t.box, threshold)
                            if rel not in got:
                                ok = False
                                reasons.append(f"expected {cls} {rel} target, found {sorted(got) or 'overlapping'}")
                                break
                        if not ok:
                            break
        correct &= ok
        matched.append(found if ok else None)
    for exc in meta.get("exclude", []):
        cls, count = exc["class"], int(exc["count"])
        if len(objects.get(cls, [])) >= count:
            correct = False
            reasons.append(f"expected {cls}<{count}, found {len(objects[cls])}")
    return GenevalResult(correct, reasons, detections)


def score_image(image: Any, meta: dict[str, Any], settings: DetectSettings | None = None,
                model: ShapeModel | None = None) -> GenevalResult:
    """Detect objects in an image (PIL or array) and judge it against a prompt record."""  # fmt: skip
    check_record(meta)
    return judge(meta, detect_objects(image, settings, model))


def summarize(records: list[dict[str, Any]], verdicts: list[bool]) -> dict[str, Any]:
    """Per-tag accuracy, counts and GenEval's overall score (mean of the tag accuracies)."""
    per: dict[str, list[bool]] = {}
    for rec, ok in zip(records, verdicts):
        per.setdefault(rec.get("tag", "untagged"), []).append(bool(ok))
    tags = {t: {"accuracy": sum(v) / len(v), "n": len(v)} for t, v in per.items()}
    order = [t for t in GENEVAL_TAGS if t in tags] + sorted(t for t in tags if t not in GENEVAL_TAGS)
    overall = sum(tags[t]["accuracy"] for t in order) / len(order) if order else 0.0
    return {"overall": overall, "tags": {t: tags[t] for t in order}}
