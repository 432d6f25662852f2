"""Evaluation tasks: prompt records (GenEval's format, extended per mode), their inputs and their scoring.

A record is one JSON line. The GenEval fields `tag`, `include`, `exclude`, `prompt` are always there; other
modes add (sizes are fractions of the image so one record serves every resolution):
- `scene`: a world scene (SceneSpec dict) the inputs are rendered from; when absent it is built from the
  record with `spec_from_prompt_meta` and the record's `seed` (default 0);
- inpaint: `"mask": {"box": [x0, y0, x1, y1], "targets": [i, ...]}`: the include entries `targets` are
  removed from `scene` to make the input image, and the box (white = regenerate) must get them back;
- outpaint: `"extend": [left, top, right, bottom]`: shares of the output width / height added around the
  input, which is the centre of `scene`'s render;
- i2i: `"source": SceneSpec dict, "strength": s`: the input is the render of `source` (the record's scene
  with one attribute wrong); the output must keep its layout and satisfy the record;
- control (any image mode): `"control": "edge" | "depth" | "seg" | "pose"`: the map is rendered from `scene`;
- video modes (tag "motion" or "sound", no `include`): `"clip": ClipSpec dict, "frames": n, "fps": f,
  "pan": "left" | "right" | "none", "motions": [...]`: the prompt is the clip's caption and `motions` its
  `motion_specs` records that state a direction; the output's tracked objects must move that way, seen
  by the first frame's camera (identity kept is reported alongside);
  - t2v: the prompt alone;
  - i2v: the input is the clip's first frame, which the output must keep;
  - v2v: the input is the render of `clip`; `"target": ClipSpec dict` is the same clip with every item
    recoloured (`"recolor": {old: new}`) on another background, which the prompt describes; every
    object of the input must keep its path and take its new colour;
  - tag "sound" adds `"sound": {"events": [seconds], "spans": [[start, stop], ...]}`: the request asks
    for a soundtrack, whose impact onsets must fall on the clip's event times and which must stay silent
    outside the spans where the world's sounds ring.
The world itself answers every task exactly (`world_output`), which gives the upper bound of each score.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from mediagen.errors import RequestError
from mediagen.world.captions import GENEVAL_TAGS, make_geneval_prompts, spec_from_prompt_meta
from mediagen.world.render import Render, render_scene
from mediagen.world.score.control import score_control
from mediagen.world.score.detect import DetectSettings, ShapeModel, detect_objects, to_array
from mediagen.world.score.edit import score_i2i, score_inpaint, score_outpaint
from mediagen.world.score.geneval import check_record, judge
from mediagen.world.score.wrong import DEFAULT_CORRUPTION, wrong_spec
from mediagen.world.spec import SceneSpec

MODES = ("t2i", "i2i", "inpaint", "outpaint", "t2v", "i2v", "v2v")
VIDEO_MODES = ("t2v", "i2v", "v2v")
VIDEO_TAG = "motion"  # the category of video records judged on motion
SOUND_TAG = "sound"  # the category of video records with a soundtrack
VIDEO_TAGS = (VIDEO_TAG, SOUND_TAG)
V2V_STRENGTH = 0.7
SOUND_RING_SLACK = 0.5  # share of a sound's length it may ring on past the world's own
CONTROL_KINDS = ("edge", "depth", "seg", "pose")
MASK_PAD = 0.04  # share of the image added around a removed object's box
OUTPAINT_SHARE = 0.25  # share of the output width added for outpainting


@dataclass
class Task:
    """One record made ready to run: the request inputs and what the world itself would return."""

    record: dict[str, Any]
    mode: str
    width: int
    height: int
    image: Image.Image | None = None
    mask: Image.Image | None = None
    extend: tuple[int, int, int, int] | None = None
    strength: float | None = None
    control: tuple[str, Image.Image] | None = None
    world: Any = field(default=None, repr=False)  # PIL image, or a ClipOutput for the video modes
    frames: int | None = None
    fps: float | None = None
    video: list[Image.Image] | None = field(default=None, repr=False)  # v2v input clip


@dataclass
class ClipOutput:
    """A clip to score: its frames (PIL images or arrays) and, when it has one, its mono soundtrack."""

    frames: list[Any]
    audio: np.ndarray | None = None
    sample_rate: int | None = None


# ----------------------------------------------------------------------------- records


def make_records(tag: str, count: int, rng: np.random.Generator, mode: str = "t2i", control: str | None = None,
                 split: str = "test") -> list[dict[str, Any]]:
    """`count` records of one GenEval tag (or of "motion" / "sound" for the video modes) with the fields
    `mode` (and `control`) need."""  # fmt: skip
    if mode in VIDEO_MODES or tag in VIDEO_TAGS:
        if mode not in VIDEO_MODES or tag not in VIDEO_TAGS:
            raise RequestError(f"video records are made with --mode {' / '.join(VIDEO_MODES)} and the category "
                               f"{' or '.join(VIDEO_TAGS)}")  # fmt: skip
        if control:
            raise RequestError("control maps are not made for video records: leave out --control")
        return make_video_records(count, rng, split, mode=mode, sound=tag == SOUND_TAG)
    if tag not in GENEVAL_TAGS:
        raise RequestError(f"unknown category {tag!r}; expected one of {', '.join(GENEVAL_TAGS)}")
    _check_mode(mode, control)
    out = []
    for rec in make_geneval_prompts(tag, count, rng, split=split):
        rec["seed"] = int(rng.integers(2**31))
        if mode != "t2i" or control:
            spec = spec_from_prompt_meta(rec, rng)
            rec["scene"] = spec.to_dict()
            if mode == "inpaint":
                rec["mask"] = _inpaint_mask(rec, spec)
            elif mode == "outpaint":
                rec["extend"] = [OUTPAINT_SHARE / 2, 0.0, OUTPAINT_SHARE / 2, 0.0]
            elif mode == "i2i":
                kind = "color" if any("color" in i for i in rec["include"]) else "shape"
                rec["source"] = wrong_spec(rec, spec, kind, rng).to_dict()
                rec["strength"] = 0.6
            if control:
                rec["control"] = control
        out.append(rec)
    return out


def make_video_records(count: int, rng: np.random.Generator, split: str = "test", n_frames: int = 16,
                       fps: float = 8.0, mode: str = "t2v", sound: bool = False) -> list[dict[str, Any]]:
    """`count` video records from sampled clips (pans and figures included): clips in which at least one
    item moves one way, or with `sound` any clip (with impacts or without) and its soundtrack's events."""  # fmt: skip
    from mediagen.world.clip_captions import camera_motion, describe_clip, motion_specs
    from mediagen.world.clips import render_clip, sample_clip

    out: list[dict[str, Any]] = []
    while len(out) < count:
        spec = sample_clip(rng, n_frames=n_frames, fps=fps, split=split)
        clip = render_clip(spec, 64, 64, antialias=False)
        motions = [m for m in motion_specs(clip) if m["direction"]]
        if not motions and not sound:
            continue
        rec = {"tag": SOUND_TAG if sound else VIDEO_TAG, "clip": spec.to_dict(), "frames": n_frames, "fps": fps,
               "pan": camera_motion(clip) or "none",
               "motions": [{k: m[k] for k in ("id", "attributes", "motion", "direction", "segment", "speed")} for m in motions]}  # fmt: skip
        if mode == "v2v":
            target, recolor = restyle_clip(spec, rng)
            clip = render_clip(target, 64, 64, antialias=False)
            rec.update(target=target.to_dict(), recolor=recolor, strength=V2V_STRENGTH)
            rec["motions"] = [{k: m[k] for k in ("id", "attributes", "motion", "direction", "segment", "speed")}
                              for m in motion_specs(clip) if m["direction"]]  # fmt: skip
        rec["prompt"] = describe_clip(clip, rng, split=split, sound_prob=1.0 if sound else 0.0).text
        if sound:
            rec["sound"] = clip_sound(clip)
        out.append(rec)
    return out


def clip_sound(clip: Any) -> dict[str, list]:
    """Event times (seconds) of a clip and the spans (seconds) where the world's sounds of them ring."""
    from mediagen.world.score.audio import clip_event_times
    from mediagen.world.sound import SAMPLE_RATE, event_spans

    spans = [[round(a / SAMPLE_RATE, 4), round(b / SAMPLE_RATE, 4)] for a, b in event_spans(clip)]
    return {"events": [round(t, 4) for t in clip_event_times(clip)], "spans": spans}


def restyle_clip(spec: Any, rng: np.random.Generator) -> tuple[Any, dict[str, str]]:
    """The same clip (same motion) with every item colour moved to another palette colour, one to one
    (objects, their patterns, figures), on another background; returns it and the colour map used."""
    from dataclasses import replace

    from mediagen.world.spec import BACKGROUNDS, COLORS

    sc = spec.scene
    used = sorted({o.color for o in sc.objects} | {o.pattern_color for o in sc.objects if o.pattern != "none"}
                  | {f.color for f in sc.figures})  # fmt: skip
    while True:
        perm = dict(zip(COLORS, (str(c) for c in rng.permutation(COLORS))))
        if all(perm[c] != c for c in used):
            break
    objects = [replace(o, color=perm[o.color], pattern_color=perm[o.pattern_color]) for o in sc.objects]
    figures = [replace(f, color=perm[f.color]) for f in sc.figures]
    background = str(rng.choice([b for b in BACKGROUNDS if b != sc.background]))
    scene = replace(sc, objects=objects, figures=figures, background=background)
    return replace(spec, scene=scene), {c: perm[c] for c in used}


def _check_mode(mode: str, control: str | None) -> None:
    """Raise RequestError for an unknown mode or control kind."""
    if mode not in MODES:
        raise RequestError(f"unknown eval mode {mode!r}; expected one of {', '.join(MODES)}")
    if control is not None and control not in CONTROL_KINDS:
        raise RequestError(f"unknown control kind {control!r}; expected one of {', '.join(CONTROL_KINDS)}")


def _target_ids(rec: dict[str, Any], targets: list[int]) -> list[int]:
    """Indices into scene.objects of the include entries `targets` (spec_from_prompt_meta keeps their order)."""
    out, k = [], 0
    for i, inc in enumerate(rec["include"]):
        n = int(inc.get("count", 1))
        if i in targets:
            out.extend(range(k, k + n))
        k += n
    return out


def _inpaint_mask(rec: dict[str, Any], spec: SceneSpec) -> dict[str, Any]:
    """The last include entry is removed; the mask is the union box of its objects, padded."""
    targets = [len(rec["include"]) - 1]
    r = render_scene(spec, 128, 128, antialias=False)
    boxes = [r.objects[i].box for i in _target_ids(rec, targets) if r.objects[i].box is not None]
    x0, y0 = min(b[0] for b in boxes) / 128, min(b[1] for b in boxes) / 128
    x1, y1 = max(b[2] for b in boxes) / 128, max(b[3] for b in boxes) / 128
    box = [max(0.0, x0 - MASK_PAD), max(0.0, y0 - MASK_PAD), min(1.0, x1 + MASK_PAD), min(1.0, y1 + MASK_PAD)]
    return {"box": [round(v, 4) for v in box], "targets": targets}


# ----------------------------------------------------------------------------- inputs


def _scene(rec: dict[str, Any]) -> SceneSpec:
    """The record's scene, or one built from the record with its seed."""
    if "scene" in rec:
        try:
            return SceneSpec.from_dict(rec["scene"])
        except (TypeError, ValueError) as e:
            raise RequestError(f"record {rec.get('prompt')!r}: bad 'scene': {e}") from None
    return spec_from_prompt_meta(rec, np.random.default_rng(int(rec.get("seed", 0))))


def _pil(a: np.ndarray) -> Image.Image:
    """uint8 array (H, W, 3) or (H, W) as a PIL image."""
    return Image.fromarray(np.ascontiguousarray(a))


def control_map(r: Render, kind: str) -> np.ndarray:
    """The control map of a render: edges, depth, seg or pose, as (H, W, 3) uint8."""
    if kind == "edge":
        return np.repeat(r.edges[..., None], 3, axis=2)
    return {"depth": r.depth_image, "seg": r.seg_image, "pose": r.pose_image}[kind]


def prepare(rec: dict[str, Any], mode: str, width: int = 128, height: int = 128, with_world: bool = True) -> Task:
    """Inputs of a record for `mode` at width x height, and (when `with_world`) the world's own answer."""
    if mode in VIDEO_MODES:
        return _prepare_video(rec, mode, width, height, with_world)
    check_record(rec)
    control = rec.get("control")
    _check_mode(mode, control)
    task = Task(rec, mode, width, height)
    if mode == "t2i" and not control and not with_world:
        return task
    full = render_scene(_scene(rec), width, height)
    spec = full.spec
    task.world = _pil(full.image)
    if control:
        task.control = (control, _pil(control_map(full, control)))
    if mode == "inpaint":
        m = rec.get("mask") or _inpaint_mask(rec, spec)
        base = copy.deepcopy(spec)
        drop = set(_target_ids(rec, list(m.get("targets", []))))
        base.objects = [o for i, o in enumerate(base.objects) if i not in drop]
        inp = render_scene(base, width, height).image
        x0, y0, x1, y1 = m["box"]
        mask = np.zeros((height, width), dtype=np.uint8)
        mask[int(y0 * height) : int(np.ceil(y1 * height)), int(x0 * width) : int(np.ceil(x1 * width))] = 255
        task.image, task.mask = _pil(inp), _pil(mask)
        task.world = _pil(np.where(mask[..., None] > 0, full.image, inp))
    elif mode == "outpaint":
        left, top, right, bottom = (rec.get("extend") or [OUTPAINT_SHARE / 2, 0, OUTPAINT_SHARE / 2, 0])
        px = (round(left * width), round(top * height), round(right * width), round(bottom * height))
        inner = full.image[px[1] : height - px[3], px[0] : width - px[2]]
        task.image, task.extend = _pil(inner), px
    elif mode == "i2i":
        if "source" not in rec:
            kind = DEFAULT_CORRUPTION.get(rec.get("tag", ""), "shape")
            kind = "color" if kind == "swap_colors" else kind
            src = wrong_spec(rec, spec, kind, np.random.default_rng(int(rec.get("seed", 0))))
        else:
            src = SceneSpec.from_dict(rec["source"])
        task.image = _pil(render_scene(src, width, height).image)
        task.strength = float(rec.get("strength", 0.6))
    return task


def _clip_spec(rec: dict[str, Any], key: str) -> Any:
    """The ClipSpec under `key` of a video record."""
    from mediagen.world.physics import ClipSpec

    try:
        return ClipSpec.from_dict(rec[key])
    except (TypeError, ValueError, KeyError) as e:
        raise RequestError(f"video record {rec.get('prompt')!r}: bad {key!r}: {e}") from None


def _prepare_video(rec: dict[str, Any], mode: str, width: int, height: int, with_world: bool) -> Task:
    """A video task: frame count and rate, the first frame (i2v) or input clip (v2v), and the world's clip
    (with its soundtrack when the record has sounds)."""
    from mediagen.world.clips import render_clip
    from mediagen.world.physics import simulate
    from mediagen.world.sound import SAMPLE_RATE, render_soundtrack

    if not isinstance(rec.get("motions"), list) or "clip" not in rec:
        raise RequestError(f"video record {rec.get('prompt')!r}: needs 'clip' and 'motions' "
                           f"(make one with --make-prompts motion --mode {mode})")  # fmt: skip
    if mode == "v2v" and "target" not in rec:
        raise RequestError(f"v2v record {rec.get('prompt')!r}: needs 'target' (make one with --make-prompts motion --mode v2v)")
    spec = _clip_spec(rec, "clip")
    task = Task(rec, mode, width, height, frames=int(rec.get("frames", spec.n_frames)), fps=float(rec.get("fps", spec.fps)))
    if mode == "i2v":
        task.image = _pil(render_scene(simulate(spec).scene(0), width, height).image)  # the clip's first frame
    if mode == "v2v":
        task.video = [_pil(f) for f in render_clip(spec, width, height).images]
        task.strength = float(rec.get("strength", V2V_STRENGTH))
    if with_world:
        clip = render_clip(_clip_spec(rec, "target") if mode == "v2v" else spec, width, height)
        audio = render_soundtrack(clip) if "sound" in rec else None
        task.world = ClipOutput([_pil(f) for f in clip.images], audio, SAMPLE_RATE if audio is not None else None)
    return task


# ----------------------------------------------------------------------------- scoring


def score(task: Task, image: Any, settings: DetectSettings | None = None,
          model: ShapeModel | None = None) -> dict[str, Any]:
    """Scores of one output image for its task; `correct` is the verdict that the per-tag accuracy counts."""  # fmt: skip
    rec = task.record
    out: dict[str, Any] = {}
    if task.mode in VIDEO_MODES:
        return score_video(task, image, settings, model)
    if task.mode == "inpaint":
        s = score_inpaint(task.image, image, task.mask, settings=settings, model=model)
        dets = detect_objects(image, settings, model)
        verdict = judge(rec, dets)
        mask = np.asarray(task.mask) > 127
        inside = _targets_inside(rec, dets, mask)
        out.update(kept=s.values["kept"], content=inside, geneval=verdict.correct, reasons=verdict.reasons)
        out["correct"] = s.correct and inside and verdict.correct
    elif task.mode == "outpaint":
        s = score_outpaint(task.image, image, task.extend, rec, settings=settings, model=model)
        out.update(s.to_dict())
    elif task.mode == "i2i":
        s = score_i2i(task.image, image, rec, settings=settings, model=model)
        out.update(s.to_dict())
    else:
        verdict = judge(rec, detect_objects(image, settings, model))
        out.update(correct=verdict.correct, reasons=verdict.reasons,
                   detections=[d.to_dict() for d in verdict.detections])  # fmt: skip
    if task.control is not None:
        kind, cmap = task.control
        kw = {"model": model} if kind == "seg" else {}
        c = score_control(kind, image, cmap, settings=settings, **kw)
        out["control"] = c.to_dict()
        out["correct"] = bool(out["correct"] and c.correct)
    return out


def as_clip(output: Any) -> ClipOutput:
    """A video output (a ClipOutput, or a list of frames) as a ClipOutput."""
    if isinstance(output, ClipOutput):
        return output
    if isinstance(output, (list, tuple)) or (isinstance(output, np.ndarray) and output.ndim == 4):
        return ClipOutput(list(output))
    raise RequestError(f"a video output must be a list of frames, got {type(output).__name__}")


def score_video(task: Task, output: Any, settings: DetectSettings | None = None,
                model: ShapeModel | None = None) -> dict[str, Any]:
    """Scores of one output clip: motion as stated (pan removed) and identity kept; the first frame kept
    (i2v); every input object's path kept and its asked colour taken (v2v); the soundtrack's onsets on
    the events and silence elsewhere (records with sounds)."""  # fmt: skip
    from mediagen.world.score.video import (
        score_first_frame,
        score_identity,
        score_motion,
        score_trajectory,
        track,
    )

    rec, clip = task.record, as_clip(output)
    frames = clip.frames
    tracks = track(frames, settings, model)
    motion = score_motion(frames, rec["motions"], task.fps, tracks=tracks, pan=rec.get("pan"))
    out: dict[str, Any] = {"motion": motion.score, "identity": score_identity(frames, tracks=tracks).score,
                           "pan_degrees": (motion.values.get("pan") or {}).get("degrees"),
                           "reasons": [f"{i['expected']} found {i['found']}" for i in motion.values["items"] if not i["correct"]]}  # fmt: skip
    correct = motion.correct
    if task.mode == "i2v":
        first = score_first_frame(frames, task.image)
        out["first_frame"] = first.score
        correct = correct and first.correct
        if not first.correct:
            out["reasons"].append(f"first frame: {first.score:.2f} of the pixels kept")
    if task.mode == "v2v":
        traj = score_trajectory(frames, task.video, settings, model, recolor=rec.get("recolor"))
        out.update(trajectory=traj.score, path_distance=traj.values["distance"], colors=traj.values.get("colors"))
        correct = correct and traj.correct
        if not traj.correct:
            out["reasons"].append(f"paths or colours not kept (distance {traj.values['distance']})")
    if "sound" in rec:
        sound = _score_sound(rec["sound"], clip)
        out.update(sound)
        correct = correct and sound["audio_correct"]
        if not sound["audio_correct"]:
            out["reasons"].append(sound.get("audio_problem") or f"soundtrack: F1 {sound['audio_f1']:.2f}, quiet {sound['audio_quiet']:.2f}")
    out["correct"] = bool(correct)
    return out


def _score_sound(expected: dict[str, Any], clip: ClipOutput) -> dict[str, Any]:
    """Soundtrack scores of a clip against a record's sound events: onsets F1, quiet share, offsets."""
    from mediagen.world.score.audio import score_soundtrack

    if clip.audio is None or clip.sample_rate is None:
        return {"audio": 0.0, "audio_correct": False, "audio_f1": 0.0, "audio_quiet": 0.0,
                "audio_problem": "the output has no soundtrack"}  # fmt: skip
    spans = [(a, b + SOUND_RING_SLACK * (b - a)) for a, b in expected.get("spans", [])]
    s = score_soundtrack(clip.audio, int(clip.sample_rate), expected.get("events", []), spans)
    offset = s.values["max_offset_s"]
    return {"audio": s.score, "audio_correct": s.correct, "audio_f1": s.values["f1"], "audio_quiet": s.values["quiet"],
            "audio_max_offset_ms": None if offset is None else round(1000 * offset, 1)}  # fmt: skip


def _targets_inside(rec: dict[str, Any], dets: list, mask: np.ndarray) -> bool:
    """Every removed include entry is detected (class, colour if stated, count) mostly inside the mask."""
    inside = [d for d in dets if (d.mask & mask).sum() >= 0.5 * d.area]
    for i in rec.get("mask", {}).get("targets", [len(rec["include"]) - 1]):
        inc = rec["include"][i]
        found = [d for d in inside if d.shape_probs.get(inc["class"], 0.0) >= 0.3 or d.shape == inc["class"]]
        if "color" in inc:
            found = [d for d in found if d.color == inc["color"]]
        if len(found) < int(inc.get("count", 1)):
            return False
    return True


def as_array(image: Any) -> np.ndarray:
    """An output image as uint8 (H, W, 3); a clip becomes a strip of its first, middle and last frames."""
    if isinstance(image, ClipOutput):
        image = image.frames
    if isinstance(image, (list, tuple)):
        picks = [image[0], image[len(image) // 2], image[-1]]
        return np.concatenate([as_array(f) for f in picks], axis=1)
    return np.clip(to_array(image), 0, 255).astype(np.uint8)
