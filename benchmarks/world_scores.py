"""Validation of the world's scorers both ways: pass rates of ground-truth outputs and of deliberately wrong ones.

    python benchmarks/world_scores.py --n 200          # GenEval categories: 200 prompts each
    python benchmarks/world_scores.py --n 50 --sections geneval,control

GenEval: the render of `spec_from_prompt_meta(record)` against a render of the same scene with the
category's corruption (wrong shape, wrong colour, swapped colours, one object more or fewer, swapped
positions). Edits: the world's answer against an untouched input (inpaint), an upside-down strip
(outpaint), the unchanged source (i2i). Control: a render against its own map and another scene's.
Reference: the same subject in another scene against a different subject. Video: sampled clips against
the stated motion played backwards. Audio: the clip's sound track against the same track 0.25 s late.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from mediagen.world import (  # noqa: E402
    BACKGROUNDS,
    SIZES,
    SceneSpec,
    make_geneval_prompts,
    render_scene,
    sample_scene,
    spec_from_prompt_meta,
)
from mediagen.world.captions import GENEVAL_TAGS  # noqa: E402
from mediagen.world.score.control import score_control  # noqa: E402
from mediagen.world.score.detect import load_shape_model  # noqa: E402
from mediagen.world.score.geneval import score_image  # noqa: E402
from mediagen.world.score.tasks import control_map, make_records, prepare, score  # noqa: E402
from mediagen.world.score.wrong import DEFAULT_CORRUPTION, wrong_spec  # noqa: E402

SECTIONS = ("geneval", "edit", "control", "reference", "video", "audio")


def line(name: str, good: list[bool], bad: list[bool], extra: str = "") -> None:
    """One result row: ground-truth pass rate, wrong pass rate, counts."""
    print(f"  {name:<16} truth {np.mean(good):.3f}   wrong {np.mean(bad):.3f}   (n={len(good)}) {extra}", flush=True)


def geneval(n: int, model) -> None:
    """Per category: ground-truth renders and corrupted renders."""
    print(f"GenEval categories ({n} held-out prompts each; wrong = {', '.join(sorted(set(DEFAULT_CORRUPTION.values())))})")
    rng = np.random.default_rng(1000)
    for tag in GENEVAL_TAGS:
        good, bad = [], []
        for meta in make_geneval_prompts(tag, n, rng, split="test"):
            spec = spec_from_prompt_meta(meta, rng)
            good.append(score_image(render_scene(spec, 128, 128).image, meta, model=model).correct)
            wrong = wrong_spec(meta, spec, DEFAULT_CORRUPTION[tag], rng)
            bad.append(score_image(render_scene(wrong, 128, 128).image, meta, model=model).correct)
        line(tag, good, bad, f"wrong = {DEFAULT_CORRUPTION[tag]}")


def edit(n: int, model) -> None:
    """Inpaint, outpaint and i2i over mixed categories."""
    print(f"Edits ({n} records each, categories mixed)")
    rng = np.random.default_rng(2000)
    for mode in ("inpaint", "outpaint", "i2i"):
        good, bad = [], []
        recs = [r for t in GENEVAL_TAGS for r in make_records(t, max(1, n // len(GENEVAL_TAGS)), rng, mode=mode)]
        for rec in recs:
            t = prepare(rec, mode)
            good.append(score(t, t.world, model=model)["correct"])
            if mode == "outpaint":
                w = np.asarray(t.world).copy()
                w[:, : t.extend[0]] = w[:, : t.extend[0]][::-1]
                bad.append(score(t, w, model=model)["correct"])
            else:
                bad.append(score(t, t.image, model=model)["correct"])  # nothing done
        wrong = {"inpaint": "input unchanged", "outpaint": "new strip upside down", "i2i": "source unchanged"}[mode]
        line(mode, good, bad, f"wrong = {wrong}")


def control(n: int, model) -> None:
    """Each control kind: own map against another scene's map."""
    print(f"Control agreement ({n} scenes; wrong = another scene's map)")
    rng = np.random.default_rng(3000)
    specs = [sample_scene(rng, with_figure_prob=0.0) for _ in range(n + 1)]
    figs = [sample_scene(rng, n_objects=int(rng.integers(0, 3)), with_figure_prob=1.0) for _ in range(n + 1)]
    for kind in ("edge", "depth", "seg", "pose"):
        pool = figs if kind == "pose" else specs
        renders = [render_scene(s, 128, 128) for s in pool]
        good, bad, vals = [], [], []
        for r, other in itertools.pairwise(renders):
            kw = {"model": model} if kind == "seg" else {}
            own = score_control(kind, r.image, control_map(r, kind), **kw)
            good.append(own.correct)
            vals.append(own.score)
            bad.append(score_control(kind, r.image, control_map(other, kind), **kw).correct)
        line(kind, good, bad, f"median score {np.median(vals):.3f}")


def reference(n: int, model) -> None:
    """Subject fidelity: same subject elsewhere vs another subject."""
    from mediagen.world.sample import place_all, sample_camera
    from mediagen.world.score.reference import score_reference
    from mediagen.world.splits import SUBJECTS

    print(f"Subject fidelity ({n} pairs; wrong = another subject)")
    rng = np.random.default_rng(4000)

    def scene_with(obj):
        while True:
            cam = sample_camera(rng)
            if place_all(rng, cam, [obj], 1.0):
                return SceneSpec(objects=[obj], camera=cam, background=str(rng.choice(BACKGROUNDS)))

    good, bad = [], []
    for _ in range(n):
        a, b = rng.choice(len(SUBJECTS), 2, replace=False)
        obj = lambda k: SUBJECTS[k].object(size=str(rng.choice(SIZES[1:])), rotation=float(rng.uniform(0, 1.5)))
        ref = render_scene(scene_with(obj(a)), 128, 128).image
        good.append(score_reference(render_scene(scene_with(obj(a)), 128, 128).image, ref, model=model).correct)
        bad.append(score_reference(render_scene(scene_with(obj(b)), 128, 128).image, ref, model=model).correct)
    line("subject", good, bad)


def video(n: int, model) -> None:
    """Motion direction of sampled clips vs the stated motion played backwards; identity kept."""
    from mediagen.world.clip_captions import motion_specs
    from mediagen.world.clips import render_clip, sample_clip
    from mediagen.world.score.video import score_identity, score_motion, track

    print(f"Video ({n} clips of 16 frames, no pan; wrong = stated motion played backwards)")
    rng = np.random.default_rng(5000)
    good, bad, ident = [], [], []
    while len(good) < n:
        spec = sample_clip(rng, n_frames=16, pan_prob=0.0, figure_prob=0.0)
        clip = render_clip(spec, 128, 128)
        ms = [m for m in motion_specs(clip) if m["direction"]]
        if not ms:
            continue
        frames = list(clip.images)
        tracks = track(frames, model=model)
        good.append(score_motion(frames, ms, clip.fps, tracks=tracks).correct)
        ident.append(score_identity(frames, tracks=tracks).score)
        a, b = ms[0]["segment"]
        backwards = frames[:a] + frames[a : b + 1][::-1] + frames[b + 1 :]
        bad.append(score_motion(backwards, ms[:1], clip.fps, model=model).correct)
    line("motion", good, bad, f"identity median {np.median(ident):.3f}")


def audio(n: int) -> None:
    """Impact onsets of sampled clips' sound tracks vs the same tracks 0.25 s late."""
    from mediagen.world.clips import sample_clip
    from mediagen.world.physics import simulate
    from mediagen.world.score.audio import clip_event_times, score_soundtrack
    from mediagen.world.sound import SAMPLE_RATE, event_spans, render_soundtrack

    class Events:
        def __init__(self, spec):
            self.spec, self.events = spec, simulate(spec).events

    print(f"Audio ({n} clips with impacts; wrong = track 0.25 s late)")
    rng = np.random.default_rng(6000)
    good, bad, offs = [], [], []
    while len(good) < n:
        c = Events(sample_clip(rng, n_frames=32, motion_probs={"fall": 0.4, "bounce": 0.3}))
        if not c.events:
            continue
        track = render_soundtrack(c)
        times = clip_event_times(c)
        spans = [(a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in event_spans(c)]
        s = score_soundtrack(track, SAMPLE_RATE, times, spans)
        good.append(s.correct)
        if s.values["max_offset_s"] is not None:
            offs.append(s.values["max_offset_s"])
        shift = round(0.25 * SAMPLE_RATE)
        late = np.concatenate([np.zeros(shift, np.float32), track[:-shift]])
        bad.append(score_soundtrack(late, SAMPLE_RATE, times, spans).correct)
    line("onsets", good, bad, f"largest onset offset median {1000 * np.median(offs):.1f} ms")


def main() -> None:
    """Run the chosen sections and print their figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="prompts per GenEval category")
    ap.add_argument("--n-other", type=int, default=48, help="items per other section")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    a = ap.parse_args()
    model = load_shape_model()
    t0 = time.time()
    for name in a.sections.split(","):
        t = time.time()
        if name == "geneval":
            geneval(a.n, model)
        elif name == "audio":
            audio(a.n_other)
        elif name == "video":
            video(max(4, a.n_other // 3), model)
        else:
            {"edit": edit, "control": control, "reference": reference}[name](a.n_other, model)
        print(f"  ({time.time() - t:.0f} s)")
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
