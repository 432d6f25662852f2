"""GenEval-style score of the built-in model (or an exported folder) on a balanced slice of the held-out prompts.

    python benchmarks/builtin_geneval.py [--per-tag 20] [--model builtin | builtin:/path/to/export]
                                         [--mode t2i] [--steps N] [--sampler S] [--guidance G]
                                         [--guidance-end E] [--json scores.json] [--autoencoded] [--jobs N]
    python benchmarks/builtin_geneval.py --compare A.json B.json

Takes the first --per-tag records of every tag from the world's held-out prompt file, generates and scores them
with `mediagen.world.evaluate`, and prints the overall score and per-tag accuracy (optionally writing them as
JSON, e.g. to the training run's scores.json, which `export.py` copies into the model card). The colour tags
are also split by whether the record names a colour-shape pair held out of training (`by_combo`).

--autoencoded scores the world's own render of each record after a round trip through the model's
autoencoder (encode, decode) instead of generating: the most a model that draws in that latent space can
score, so the model's figure can be read against it.

--compare reads two --json summaries and compares them on the records both scored with the same prompt and
seed: the same noise goes in, so the difference comes from what changed between the runs (steps, sampler,
guidance, weights) and shows at fewer prompts than two separate scores need.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def scorer_id() -> str:
    """First 8 hex digits of the shipped shape classifier's SHA-256: which scorer a figure came from."""
    import hashlib

    from mediagen.world.score.detect import MODEL_FILE

    return hashlib.sha256(Path(MODEL_FILE).read_bytes()).hexdigest()[:8]


def combo_split(records: list[dict], verdicts: list[bool]) -> dict:
    """Accuracy of the colour tags on records naming a colour-shape pair held out of training, and on the rest."""
    out: dict[str, dict] = {}
    for tag in ("colors", "color_attr"):
        for held in (True, False):
            got = [bool(v) for r, v in zip(records, verdicts)
                   if r["tag"] == tag and bool(r.get("heldout", {}).get("combo")) == held]
            if got:
                out.setdefault(tag, {})["heldout_combo" if held else "seen_combos"] = {
                    "accuracy": sum(got) / len(got), "n": len(got)}
    return out


def round_trip(model_id: str, checkpoint: Path | None):
    """image (H, W, 3) uint8 -> the same after encode + decode, by a model's autoencoder or by an autoencoder
    checkpoint of a training run (`ae_final.pt`, `aedec_final.pt`)."""
    import numpy as np
    import torch
    from PIL import Image

    if checkpoint is not None:
        from mediagen.families.builtin.train import _ae_from, autocast, from_img, load_checkpoint, to_img
        from mediagen.settings import cpu_has_fast_bf16

        ae, _ = _ae_from(load_checkpoint(checkpoint))
        ae.eval()
        bf16 = cpu_has_fast_bf16()

        def through(img):
            with torch.inference_mode(), autocast(bf16):
                return to_img(ae(from_img(img[None])))[0]

        return through
    from mediagen.families.builtin.model import load_folder, weights_dir

    if model_id.split(":", 1)[0] != "builtin":
        raise SystemExit(f"--autoencoded needs a built-in model ('builtin' or 'builtin:/path/to/export'), not {model_id!r}")
    folder = Path(model_id.split(":", 1)[1]) if ":" in model_id else weights_dir()
    model = load_folder(folder, model_id=model_id)
    return lambda img: np.asarray(model.decode(model.encode_image(Image.fromarray(img))))


def autoencoded(records: list[dict], model_id: str, seed: int, checkpoint: Path | None = None) -> dict:
    """Pass rates of the world's renders of `records` after the model's autoencoder round trip."""
    import numpy as np

    from mediagen.world import render_scene, spec_from_prompt_meta
    from mediagen.world.score.geneval import score_image, summarize

    through = round_trip(model_id, checkpoint)
    rng = np.random.default_rng(seed)
    verdicts = []
    for rec in records:
        img = render_scene(spec_from_prompt_meta(rec, rng), 128, 128).image
        verdicts.append(score_image(through(img), rec).correct)
    return {"model": str(checkpoint) if checkpoint else model_id, **summarize(records, verdicts),
            "outputs": len(records), "autoencoded": True, "by_combo": combo_split(records, verdicts)}


def write_sheet(path: Path, rows: list[dict], images: list, per_tag: int) -> None:
    """The first `per_tag` outputs of every tag as a contact sheet (one row per tag), written atomically."""
    from mediagen.media import atomic_write
    from mediagen.world.evaluate import contact_sheet

    picked: dict[str, list[int]] = {}
    for k, row in enumerate(rows):
        if len(picked.setdefault(row["tag"], [])) < per_tag:
            picked[row["tag"]].append(k)
    keep = [k for ks in picked.values() for k in ks]
    sheet = contact_sheet([images[k] for k in keep], [rows[k] for k in keep], columns=per_tag, thumb=96)
    atomic_write(path, lambda tmp: sheet.save(tmp, format="PNG", optimize=True))


def _one_thread() -> None:
    """Worker start-up for --jobs: one thread per process, so the processes share the cores instead of fighting."""
    import torch

    torch.set_num_threads(1)


def _generate(records: list[dict], model: str, mode: str, seed: int, steps: int | None, options: dict):
    """Rows and images of `records` by `mediagen.world.evaluate.run`, the first record at `seed` (one --jobs
    process's slice, or all of them)."""
    from mediagen.world.evaluate import run

    return run(records, model, mode, 1, (128, 128), seed, steps, options=options)


def run_jobs(records: list[dict], model: str, mode: str, seed: int, steps: int | None, options: dict, jobs: int):
    """Rows and images of `records` generated and scored by `jobs` one-thread processes, each on a contiguous
    slice; every record keeps the seed (seed + its index) it gets in one process, so the verdicts pair with a
    one-process run's."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    cuts = [round(k * len(records) / jobs) for k in range(jobs + 1)]
    slices = [(lo, hi) for lo, hi in zip(cuts, cuts[1:]) if hi > lo]
    rows, images = [], []
    with ProcessPoolExecutor(len(slices), mp_context=mp.get_context("spawn"), initializer=_one_thread) as pool:
        futures = [pool.submit(_generate, records[lo:hi], model, mode, seed + lo, steps, options) for lo, hi in slices]
        for (lo, _), fut in zip(slices, futures):
            part_rows, part_images = fut.result()
            rows += [{**r, "index": r["index"] + lo} for r in part_rows]
            images += part_images
    return rows, images


def read_summary(path: Path) -> dict:
    """A --json summary with per-record verdicts; a clear error if it has none."""
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"--compare {path}: cannot read it as JSON ({e})")
    if not isinstance(d.get("verdicts"), list):
        raise SystemExit(f"--compare {path}: it has no per-record verdicts; score again with this script's --json")
    return d


def paired(tags: list[str], mine: list[bool], theirs: list[bool]) -> dict[str, dict]:
    """Per tag and overall (mean over tags): one run's accuracy minus another's on the same records, with the
    standard error of that paired difference (its per-record spread over sqrt(n))."""
    out: dict[str, dict] = {}
    for tag in dict.fromkeys(tags):
        d = [int(a) - int(b) for t, a, b in zip(tags, mine, theirs) if t == tag]
        n = len(d)
        mean = sum(d) / n
        var = sum((x - mean) ** 2 for x in d) / max(n - 1, 1)
        out[tag] = {"n": n, "diff": mean, "se": (var / n) ** 0.5,
                    "only_this": d.count(1), "only_other": d.count(-1)}
    k = len(out)
    out["overall"] = {"n": sum(v["n"] for v in out.values()), "diff": sum(v["diff"] for v in out.values()) / k,
                      "se": sum(v["se"] ** 2 for v in out.values()) ** 0.5 / k,
                      "only_this": sum(v["only_this"] for v in out.values()),
                      "only_other": sum(v["only_other"] for v in out.values())}
    return out


def print_paired(a: dict, b: dict, path_a: Path, path_b: Path) -> None:
    """Two runs' summaries compared on the records both scored with the same prompt and seed."""
    key = lambda v: (v["tag"], v["prompt"], v["seed"])  # noqa: E731
    theirs = {key(v): v["correct"] for v in b["verdicts"]}
    common = [v for v in a["verdicts"] if key(v) in theirs]
    if not common:
        raise SystemExit(f"--compare: {path_a} and {path_b} share no record scored with the same prompt and seed")
    res = paired([v["tag"] for v in common], [v["correct"] for v in common], [theirs[key(v)] for v in common])
    print(f"A = {path_a}, B = {path_b}: A minus B on {len(common)} common records")
    for tag, v in res.items():
        print(f"  {tag:<14} {v['diff']:+.3f} +- {v['se']:.3f}  (right only in A {v['only_this']}, "
              f"only in B {v['only_other']}, n={v['n']})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="builtin")
    p.add_argument("--mode", default="t2i")
    p.add_argument("--per-tag", type=int, default=20)
    p.add_argument("--tags", nargs="+", default=None, help="score only these tags (default: all six)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--sampler", default=None, help="default: the model's")
    p.add_argument("--guidance", type=float, default=None, help="default: the model's")
    p.add_argument("--guidance-end", type=float, default=None,
                   help="share of the steps that use guidance (default: the model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1,
                   help="generate in this many processes of one thread each (same seeds and verdicts as one "
                        "process of one thread)")
    p.add_argument("--json", type=Path, default=None, help="write the summary here (atomically)")
    p.add_argument("--autoencoded", action="store_true", help="score autoencoded world renders instead")
    p.add_argument("--sheet", type=Path, default=None,
                   help="write a contact sheet PNG here: the first --sheet-per-tag outputs of every tag, one row "
                        "per tag, framed green where scored correct (export copies RUN/samples_step<N>.png beside "
                        "the weights)")
    p.add_argument("--sheet-per-tag", type=int, default=6)
    p.add_argument("--ae-checkpoint", type=Path, default=None,
                   help="with --autoencoded: the autoencoder of a training run's checkpoint instead of the model's")
    p.add_argument("--compare", type=Path, nargs=2, metavar=("A.json", "B.json"), default=None,
                   help="generate nothing: compare two --json summaries on the records they share (same prompt "
                        "and seed), per tag: how many each alone got right, and A minus B with its standard error")
    a = p.parse_args()
    if a.compare is not None:
        print_paired(*(read_summary(f) for f in a.compare), *a.compare)
        return

    from mediagen.media import atomic_write
    from mediagen.world.captions import GENEVAL_TAGS
    from mediagen.world.evaluate import DEFAULT_PROMPTS, read_records, report

    records, seen = [], {}
    if a.jobs < 1:
        p.error(f"--jobs {a.jobs}: give 1 or more processes")
    if a.tags is not None and not set(a.tags) <= set(GENEVAL_TAGS):
        p.error(f"unknown tag in --tags {a.tags}; the tags are {list(GENEVAL_TAGS)}")
    for r in read_records(DEFAULT_PROMPTS):
        if seen.get(r["tag"], 0) < a.per_tag and (a.tags is None or r["tag"] in a.tags):
            seen[r["tag"]] = seen.get(r["tag"], 0) + 1
            records.append(r)
    t0 = time.time()
    if a.autoencoded:
        rep = autoencoded(records, a.model, a.seed, a.ae_checkpoint)
        rep["seconds"] = time.time() - t0
    else:
        options = {k: v for k, v in (("sampler", a.sampler), ("guidance", a.guidance),
                                     ("guidance_end", a.guidance_end)) if v is not None}
        if a.jobs > 1:
            rows, images = run_jobs(records, a.model, a.mode, a.seed, a.steps, options, a.jobs)
        else:
            rows, images = _generate(records, a.model, a.mode, a.seed, a.steps, options)
        if a.sheet is not None:
            write_sheet(a.sheet, rows, images, a.sheet_per_tag)
        rep = report(rows, a.model, a.mode, f"{DEFAULT_PROMPTS.name} (first {a.per_tag} per tag)", 1, time.time() - t0)
        ordered = sorted(rows, key=lambda r: r["index"])  # record order
        rep["by_combo"] = combo_split(records, [r["correct"] for r in ordered])
        rep["verdicts"] = [{"tag": r["tag"], "prompt": r["prompt"], "seed": a.seed + r["index"],
                            "correct": bool(r["correct"])} for r in ordered]
    summary = {k: v for k, v in rep.items() if k not in ("rows", "means")}
    summary["steps"] = a.steps or "model default"
    summary["sampler"] = a.sampler or "model default"
    summary["guidance"] = "model default" if a.guidance is None else a.guidance
    summary["guidance_end"] = "model default" if a.guidance_end is None else a.guidance_end
    summary["scorer"] = scorer_id()
    summary["load_average"] = round(os.getloadavg()[0], 2)
    what = f"world renders through the autoencoder of {rep['model']}" if a.autoencoded else f"{a.model} {a.mode}"
    print(f"{what}: overall {rep['overall']:.3f} over {rep['outputs']} outputs in {rep['seconds']:.0f} s")
    for tag, v in rep["tags"].items():
        print(f"  {tag:<14} {v['accuracy']:.3f}  (n={v['n']})")
    for tag, split in rep["by_combo"].items():
        print(f"  {tag:<14} " + ", ".join(f"{k.replace('_', ' ')} {v['accuracy']:.3f} (n={v['n']})"
                                          for k, v in split.items()))
    if a.json is not None:
        atomic_write(a.json, lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2)))


if __name__ == "__main__":
    main()
