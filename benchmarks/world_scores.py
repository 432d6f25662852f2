"""Validation of the world's scorers both ways: pass rates of ground-truth outputs and of deliberately wrong ones.

    python benchmarks/world_scores.py --n 200          # GenEval categories: 200 prompts each
    python benchmarks/world_scores.py --n 50 --sections geneval,control
    python benchmarks/world_scores.py --n 200 --n-other 200 --sections geneval,control --seed 1   # other scenes

GenEval: the render of `spec_from_prompt_meta(record)` against a render of the same scene with the
category's corruption (wrong shape, wrong colour, swapped colours, one object more or fewer, swapped
positions), each also passed through a random mix of generated-image artefacts (blur, resampling, JPEG,
noise). Edits: the world's answer against an untouched input (inpaint), an upside-down strip
(outpaint), the unchanged source (i2i). Control: a render against its own map and another scene's.
Reference: the same subject in another scene against a different subject. Video: sampled clips against
the items' stated motion played backwards under the stated camera, and the picture played backwards. Audio:
the clip's sound track against the same track 0.25 s late.
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
from mediagen.world.score.fit import degrade  # noqa: E402
from mediagen.world.score.geneval import score_image  # noqa: E402
from mediagen.world.score.tasks import control_map, make_records, prepare, score  # noqa: E402
from mediagen.world.score.wrong import DEFAULT_CORRUPTION, wrong_spec  # noqa: E402

SECTIONS = ("geneval", "edit", "control", "reference", "video", "audio")


def line(name: str, good: list[bool], bad: list[bool], extra: str = "") -> None:
    """One result row: ground-truth pass rate, wrong pass rate, counts."""
    n = f"n={len(good)}" if len(bad) == len(good) else f"n={len(good)}, wrong n={len(bad)}"
    print(f"  {name:<16} truth {np.mean(good):.3f}   wrong {np.mean(bad):.3f}   ({n}) {extra}", flush=True)


def geneval(n: int, model, seed: int = 0) -> None:
    """Per category: ground-truth renders and corrupted renders."""
    print(f"GenEval categories ({n} held-out prompts each; wrong = {', '.join(sorted(set(DEFAULT_CORRUPTION.values())))})")
    print("  (degraded: the same render and the wrong one through a random mix of blur, resampling, JPEG and noise)")
    rng = np.random.default_rng(1000 + seed)
    drng = np.random.default_rng(1500 + seed)
    for tag in GENEVAL_TAGS:
        good, bad, dgood, dbad = [], [], [], []
        for meta in make_geneval_prompts(tag, n, rng, split="test"):
            spec = spec_from_prompt_meta(meta, rng)
            truth = render_scene(spec, 128, 128).image
            good.append(score_image(truth, meta, model=model).correct)
            wrong = render_scene(wrong_spec(meta, spec, DEFAULT_CORRUPTION[tag], rng), 128, 128).image
            bad.append(score_image(wrong, meta, model=model).correct)
            dgood.append(score_image(degrade(truth, drng), meta, model=model).correct)
            dbad.append(score_image(degrade(wrong, drng), meta, model=model).correct)
        line(tag, good, bad, f"wrong = {DEFAULT_CORRUPTION[tag]}; degraded: truth {np.mean(dgood):.3f} wrong {np.mean(dbad):.3f}")


def edit(n: int, model, seed: int = 0) -> None:
    """Inpaint, outpaint and i2i over mixed categories."""
    print(f"Edits ({n} records each, categories mixed)")
    rng = np.random.default_rng(2000 + seed)
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


def control(n: int, model, seed: int = 0) -> None:
    """Each control kind: own map against another scene's map."""
    print(f"Control agreement ({n} scenes; wrong = another scene's map)")
    rng = np.random.default_rng(3000 + seed)
    specs = [sample_scene(rng, with_figure_prob=0.0) for _ in range(n + 1)]
    figs = [sample_scene(rng, n_objects=int(rng.integers(0, 3)), with_figure_prob=1.0) for _ in range(n + 1)]
    for kind in ("edge", "depth", "seg", "pose"):
        pool = figs if kind == "pose" else specs
        renders = [render_scene(s, 128, 128) for s in pool]
        good, bad, vals = [], [], []
        for r, other in itertools.pairwise(renders):
            kw = {"model": model} if kind in ("seg", "pose") else {}
            own = score_control(kind, r.image, control_map(r, kind), **kw)
            good.append(own.correct)
            vals.append(own.score)
            bad.append(score_control(kind, r.image, control_map(other, kind), **kw).correct)
        line(kind, good, bad, f"median score {np.median(vals):.3f}")


def reference(n: int, model, seed: int = 0) -> None:
    """Subject fidelity: same subject elsewhere vs another subject."""
    from mediagen.world.sample import place_all, sample_camera
    from mediagen.world.score.reference import score_reference
    from mediagen.world.splits import SUBJECTS

    print(f"Subject fidelity ({n} pairs; wrong = another subject)")
    rng = np.random.default_rng(4000 + seed)

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


def video(n: int, model, seed: int = 0) -> None:
    """Motion direction (7n clips without and 7n with a camera pan, walking figures included) against the
    clip whose items play the first stated motion's stretch backwards while the camera turns as stated,
    and against that stretch of the clip simply played backwards (which turns a panning camera back too:
    where no item stands still the pan cannot be seen, so such a clip can read as the stated motion under
    the stated pan); on 3n of those clips identity against a clip whose second half shows another scene, the
    first frame (i2v) against another clip's, and the trajectory (v2v: the clip restyled) against the
    restyled clip with its items sent the other way."""
    from dataclasses import replace

    from mediagen.world.clip_captions import camera_motion, motion_specs
    from mediagen.world.clips import render_clip, sample_clip
    from mediagen.world.score.tasks import restyle_clip
    from mediagen.world.score.video import (
        score_first_frame,
        score_identity,
        score_motion,
        score_trajectory,
        track,
    )

    def reversed_under_camera(clip, a, b):
        """Frames of the clip with every item's motion over frames a..b played backwards while the camera
        keeps turning as stated."""
        out = list(clip.images)
        for k in range(a, b + 1):
            scene = replace(clip.simulation.scene(a + b - k), camera=clip.cameras[k])
            out[k] = render_scene(scene, clip.width, clip.height).image
        return out

    motion_n, other_n = 7 * n, 3 * n
    print("Video (16-frame clips at 128 x 128; motion wrong = the items' stated stretch played backwards under the "
          "stated camera)")
    rng = np.random.default_rng(5000 + seed)
    kept = []  # (clip, frames, tracks) for the identity, first-frame and trajectory checks
    all_good, all_bad = [], []
    for label, pan_prob in (("motion, no pan", 0.0), ("motion, pan", 1.0)):
        good, bad, back, walks, speeds, panned = [], [], [], [], [], 0
        while len(good) < motion_n:
            clip = render_clip(sample_clip(rng, n_frames=16, pan_prob=pan_prob), 128, 128)
            ms = [m for m in motion_specs(clip) if m["direction"]]
            if not ms:
                continue
            pan = camera_motion(clip) or "none"
            panned += pan != "none"
            frames = list(clip.images)
            tracks = track(frames, model=model)
            res = score_motion(frames, ms, clip.fps, tracks=tracks, pan=pan)
            good.append(res.correct)
            walks += [i["correct"] for i, m in zip(res.values["items"], ms) if m["motion"] == "walks"]
            speeds += [i["speed_ok"] for i in res.values["items"] if i["expected_speed"]]
            a, b = ms[0]["segment"]
            turned = reversed_under_camera(clip, a, b)
            bad.append(score_motion(turned, ms[:1], clip.fps, model=model, pan=pan).correct)
            backwards = frames[:a] + frames[a : b + 1][::-1] + frames[b + 1 :]
            back.append(score_motion(backwards, ms[:1], clip.fps, model=model, pan=pan).correct)
            if len(kept) < other_n and len(good) % 4 == 1:  # from clips with and without pans
                kept.append((clip, frames, tracks))
        line(label, good, bad, f"({panned} panned; walking figures {np.mean(walks):.3f} of {len(walks)}; "
                               f"speed class {np.mean(speeds):.3f} of {len(speeds)})")  # fmt: skip
        print(f"  {'':<16} whole picture played backwards (the camera too): wrong {np.mean(back):.3f}", flush=True)
        all_good += good
        all_bad += bad
    line("motion, all", all_good, all_bad)

    good, bad = [], []
    for (clip, frames, tracks), (_, other, _) in zip(kept, kept[1:] + kept[:1]):
        good.append(score_identity(frames, tracks=tracks).correct)
        bad.append(score_identity(frames[:8] + other[8:], model=model).correct)
    line("identity", good, bad, "wrong = second half from another clip")

    good = [score_first_frame(frames, frames[0]).correct for _, frames, _ in kept]
    bad = [score_first_frame(frames, other[0]).correct for (_, frames, _), (_, other, _) in zip(kept, kept[1:] + kept[:1])]
    line("first frame", good, bad, "wrong = another clip's first frame")

    good, bad, dist = [], [], []
    for clip, frames, _ in kept:
        target, recolor = restyle_clip(clip.spec, rng)
        moving = [m for m in target.motions if abs(m.velocity[0]) + abs(m.velocity[2]) > 0.3]
        if not moving:
            continue
        res = score_trajectory(list(render_clip(target, 128, 128).images), frames, model=model, recolor=recolor)
        good.append(res.correct)
        dist.append(res.values["distance"])
        turned = replace(target, motions=[replace(m, velocity=(-m.velocity[0], m.velocity[1], -m.velocity[2])) for m in target.motions])
        bad.append(score_trajectory(list(render_clip(turned, 128, 128).images), frames, model=model, recolor=recolor).correct)
    line("trajectory", good, bad, f"truth = restyled clip (mean path distance {np.mean(dist):.4f} widths); "
                                  f"wrong = its items sent the other way")  # fmt: skip


def audio(n: int) -> None:
    """Impact onsets of sampled clips' soundtracks (at least 100 clips) against the same tracks 0.25 s late
    and against the tracks with an impact added where nothing happens; silent tracks of clips without
    events against the same with an impact added."""
    from mediagen.world.clips import sample_clip
    from mediagen.world.physics import simulate
    from mediagen.world.score.audio import clip_event_times, score_soundtrack
    from mediagen.world.sound import (
        SAMPLE_RATE,
        event_spans,
        impact_sound,
        render_soundtrack,
    )

    class Events:
        def __init__(self, spec):
            self.spec, self.events = spec, simulate(spec).events

    def with_stray_impact(track, times, rng):
        """The track with one impact starting at least 0.3 s from every event (None when there is no room)."""
        dur = len(track) / SAMPLE_RATE
        free = [t for t in np.arange(0.1, dur - 0.5, 0.05) if all(abs(t - e) >= 0.3 for e in times)]
        if not free:
            return None
        t = float(rng.choice(free))
        s = impact_sound(str(rng.choice(["metal", "matte"])), "medium", 3.0)
        out = track.copy()
        i = round(t * SAMPLE_RATE)
        out[i : i + len(s)] += s[: len(out) - i]
        return out

    n = max(n, 100)
    print(f"Audio ({n} clips with impacts, {n} without)")
    rng = np.random.default_rng(6000)
    good, late_bad, stray_bad, offs, quiet_good, quiet_bad = [], [], [], [], [], []
    while len(good) < n or len(quiet_good) < n:
        c = Events(sample_clip(rng, n_frames=32, motion_probs={"fall": 0.4, "bounce": 0.3}))
        track = render_soundtrack(c)
        times = clip_event_times(c)
        spans = [(a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in event_spans(c)]
        if not c.events:
            if len(quiet_good) < n:
                quiet_good.append(score_soundtrack(track, SAMPLE_RATE, [], []).correct)
                quiet_bad.append(score_soundtrack(with_stray_impact(track, [], rng), SAMPLE_RATE, [], []).correct)
            continue
        if len(good) >= n:
            continue
        s = score_soundtrack(track, SAMPLE_RATE, times, spans)
        good.append(s.correct)
        if s.values["max_offset_s"] is not None:
            offs.append(s.values["max_offset_s"])
        shift = round(0.25 * SAMPLE_RATE)
        late = np.concatenate([np.zeros(shift, np.float32), track[:-shift]])
        late_bad.append(score_soundtrack(late, SAMPLE_RATE, times, spans).correct)
        stray = with_stray_impact(track, times, rng)
        if stray is not None:
            stray_bad.append(score_soundtrack(stray, SAMPLE_RATE, times, spans).correct)
    line("onsets", good, late_bad, f"wrong = 0.25 s late; largest onset offset median {1000 * np.median(offs):.1f} ms")
    line("stray impact", good, stray_bad, f"wrong = an impact added 0.3 s or more from every event (n={len(stray_bad)})")
    line("silence", quiet_good, quiet_bad, "clips without events; wrong = an impact added")


def main() -> None:
    """Run the chosen sections and print their figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="prompts per GenEval category")
    ap.add_argument("--n-other", type=int, default=48, help="items per other section")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--seed", type=int, default=0, help="offset of the random streams (all but audio)")
    ap.add_argument("--shape-model", default=None, help="shape classifier JSON (default: the shipped one)")
    a = ap.parse_args()
    model = load_shape_model(a.shape_model)
    t0 = time.time()
    for name in a.sections.split(","):
        t = time.time()
        if name == "geneval":
            geneval(a.n, model, a.seed)
        elif name == "audio":
            audio(a.n_other)
        elif name == "video":
            video(max(4, a.n_other // 3), model, a.seed)
        else:
            {"edit": edit, "control": control, "reference": reference}[name](a.n_other, model, a.seed)
        print(f"  ({time.time() - t:.0f} s)")
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
