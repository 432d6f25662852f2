"""Edit modes of the built-in model scored on the world's held-out prompts, next to the world's own answers.

    python benchmarks/builtin_edits.py [--model builtin | builtin:/path/to/export] [--per-tag 5]
                                       [--sections inpaint,blend,outpaint,i2i] [--json out.json]
                                       [--steps N] [--guidance G] [--mask-blend gradient|feather]

inpaint: trained-in inpainting (mask + masked latent as UNet inputs): outside-mask pixels kept, the removed
objects back inside the mask (class, colour, count). blend: the same tasks, training-free (text-to-image
inputs, known latent kept at every step). outpaint: original kept, seam ratio of the model against the world's
ground-truth render of the same canvas (also per task: the share of tasks whose seam ratio is within 10% of
the world's on the same task, and the shares below and above that), and the prompt satisfied. i2i: a source
scene that contradicts the prompt (another colour or shape) at strength 0.3 and 0.8: layout (edge F1 against
the source) and prompt adherence. --mask-blend picks how inpainted and outpainted pixels meet the original.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any


def records(mode: str, per_tag: int, seed: int) -> list[dict[str, Any]]:
    """per_tag held-out records of every GenEval tag, built for `mode`."""
    import numpy as np

    from mediagen.world.captions import GENEVAL_TAGS
    from mediagen.world.score.tasks import make_records

    rng = np.random.default_rng(seed)
    return [r for tag in GENEVAL_TAGS for r in make_records(tag, per_tag, rng, mode=mode)]


def run_mode(api: Any, model: str, mode: str, recs: list[dict[str, Any]], seed: int,
             strength: float | None = None, steps: int | None = None,
             options: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Scores of the model's outputs and of the world's answers for the same tasks."""
    from mediagen.world.evaluate import generate
    from mediagen.world.score.detect import load_shape_model
    from mediagen.world.score.tasks import prepare, score

    shape_model = load_shape_model()
    got, truth = [], []
    for i, rec in enumerate(recs):
        rec = rec | ({"strength": strength} if strength is not None else {})
        task = prepare(rec, mode, 128, 128, with_world=True)
        img = generate(task, model, 1, seed + i, api, steps, options)[0]
        got.append(score(task, img, model=shape_model))
        truth.append(score(task, task.world, model=shape_model))
    return got, truth


def summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Pass rate and the mean of every numeric or boolean value."""
    out = {"correct": float(statistics.mean(bool(r["correct"]) for r in rows)), "n": len(rows)}
    for key in ("kept", "content", "geneval", "seam", "layout", "adherence"):
        vals = [float(r[key]) for r in rows if isinstance(r.get(key), (bool, int, float))]
        if vals:
            out[key] = statistics.mean(vals)
    return out


def show(name: str, s: dict[str, float]) -> None:
    print(f"  {name:<22} " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in s.items()),
          flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="builtin")
    p.add_argument("--per-tag", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sections", default="inpaint,blend,outpaint,i2i")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--steps", type=int, default=None, help="default: the model's")
    p.add_argument("--guidance", type=float, default=None, help="default: the model's")
    p.add_argument("--mask-blend", choices=("gradient", "feather"), default=None,
                   help="how inpainted and outpainted pixels meet the original (default: the request's)")
    a = p.parse_args()
    options = {k: v for k, v in (("guidance", a.guidance), ("mask_blend", a.mask_blend)) if v is not None}
    sampling = {"steps": a.steps, "options": options or None}

    from mediagen.api import Mediagen
    from mediagen.media import atomic_write

    api = Mediagen()
    loaded = api.model(a.model)
    results: dict[str, Any] = {"model": a.model, "per_tag": a.per_tag, "steps": a.steps or "model default",
                               "guidance": "model default" if a.guidance is None else a.guidance,
                               "mask_blend": a.mask_blend or "request default"}
    t0 = time.time()
    for section in a.sections.split(","):
        t = time.time()
        if section in ("inpaint", "blend"):
            loaded.inpaint_method = "blend" if section == "blend" else "trained"
            got, truth = run_mode(api, a.model, "inpaint", records("inpaint", a.per_tag, a.seed), a.seed, **sampling)
            loaded.inpaint_method = "trained"
            results[section] = {"model": summary(got), "world": summary(truth)}
        elif section == "outpaint":
            got, truth = run_mode(api, a.model, "outpaint", records("outpaint", a.per_tag, a.seed), a.seed,
                                  **sampling)
            s, w = summary(got), summary(truth)
            s["seam_vs_world"] = s["seam"] / w["seam"]
            ratios = [g["seam"] / t["seam"] for g, t in zip(got, truth)]
            s["seam_within_10pct"] = float(statistics.mean(abs(r - 1) <= 0.1 for r in ratios))
            s["seam_below"] = float(statistics.mean(r < 0.9 for r in ratios))
            s["seam_above"] = float(statistics.mean(r > 1.1 for r in ratios))
            results[section] = {"model": s, "world": w}
        elif section == "i2i":
            recs = records("i2i", a.per_tag, a.seed)
            for strength in (0.3, 0.8):
                got, truth = run_mode(api, a.model, "i2i", recs, a.seed, strength, **sampling)
                results[f"i2i@{strength}"] = {"model": summary(got), "world": summary(truth)}
        else:
            raise SystemExit(f"unknown section {section!r}; use inpaint, blend, outpaint, i2i")
        for key in [k for k in results if k.split("@")[0] == section]:
            show(f"{key} model", results[key]["model"])
            show(f"{key} world", results[key]["world"])
        print(f"  ({time.time() - t:.0f} s)", flush=True)
    results["seconds"] = round(time.time() - t0, 1)
    results["load_average"] = round(os.getloadavg()[0], 2)
    if a.json is not None:
        atomic_write(a.json, lambda tmp: Path(tmp).write_text(json.dumps(results, indent=2)))


if __name__ == "__main__":
    main()
