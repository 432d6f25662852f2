"""Exact scorers of the world's generation modes, from image (clip, sound) analysis alone.

    from mediagen.world.score import score_image, detect_objects
    verdict = score_image(image, {"tag": "colors", "include": [{"class": "cube", "count": 1, "color": "red"}],
                                  "prompt": "a red cube"})
    verdict.correct, verdict.reasons, [d.to_dict() for d in verdict.detections]

Modules: `detect` (background model, colour segmentation, regions, shape classifier), `geneval` (GenEval's
rule and summary), `edit` (inpaint / outpaint / i2i), `control` (edge, depth, seg, pose agreement),
`reference` (subject fidelity), `video` (tracking: motion, identity, first frame, trajectory), `audio`
(onsets and silence), `tasks` (prompt records per mode, their inputs and scoring), `wrong` (deliberately
wrong scenes for validation), `fit` (refits the shipped shape classifier).
"""

from mediagen.world.score.audio import AudioScore, detect_onsets, score_soundtrack
from mediagen.world.score.control import ControlScore, edge_f1, edge_map, score_control
from mediagen.world.score.detect import Detection, DetectSettings, analyze, detect_objects, load_shape_model
from mediagen.world.score.edit import EditScore, score_i2i, score_inpaint, score_outpaint
from mediagen.world.score.geneval import GenevalResult, judge, score_image, summarize
from mediagen.world.score.reference import FidelityScore, score_reference
from mediagen.world.score.video import (
    VideoScore,
    score_first_frame,
    score_identity,
    score_motion,
    score_trajectory,
    track,
)

__all__ = [
    "AudioScore",
    "ControlScore",
    "DetectSettings",
    "Detection",
    "EditScore",
    "FidelityScore",
    "GenevalResult",
    "VideoScore",
    "analyze",
    "detect_objects",
    "detect_onsets",
    "edge_f1",
    "edge_map",
    "judge",
    "load_shape_model",
    "score_control",
    "score_first_frame",
    "score_i2i",
    "score_identity",
    "score_image",
    "score_inpaint",
    "score_motion",
    "score_outpaint",
    "score_reference",
    "score_soundtrack",
    "score_trajectory",
    "summarize",
    "track",
]  # fmt: skip
