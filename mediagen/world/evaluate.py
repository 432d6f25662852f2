"""`mediagen eval`: generate from a GenEval-style prompt file and score every output by image analysis.

    mediagen eval --model builtin --mode t2i --prompts geneval_test.jsonl --n 2 --json --out runs/eval
    mediagen eval --model world --mode inpaint --prompts inpaint.jsonl --out runs/world   # the upper bound
    mediagen eval --make-prompts position --count 200 --mode t2i -o position.jsonl       # held-out records
    mediagen eval --make-prompts motion --count 50 --mode t2v -o motion.jsonl             # video records
    mediagen eval --make-prompts sound --count 50 --mode t2v -o sound.jsonl               # ... with sounds
    mediagen eval --model world --mode i2v --prompts motion_i2v.jsonl --out runs/i2v

The prompt file holds one record per line (see `mediagen.world.score.tasks` for the fields other modes
add). The report (`report.json`) gives GenEval's per-tag accuracy and overall score plus the mean of every
per-mode value (kept share, seam ratio, layout F1, control agreement; motion, identity, first frame,
trajectory and soundtrack scores for the video modes); `samples/` holds each output, and
`contact_sheet.png` / `index.html` show them with their verdicts.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from mediagen.errors import MediagenError, RequestError
from mediagen.media import atomic_write
from mediagen.world.captions import GENEVAL_TAGS
from mediagen.world.score.detect import load_shape_model
from mediagen.world.score.geneval import summarize
from mediagen.world.score.tasks import (
    CONTROL_KINDS,
    MODES,
    VIDEO_MODES,
    VIDEO_TAGS,
    ClipOutput,
    Task,
    as_array,
    make_records,
    prepare,
    score,
)

WORLD_MODEL = "world"
DEFAULT_PROMPTS = Path(__file__).resolve().parent / "prompts" / "geneval_test.jsonl"


# ----------------------------------------------------------------------------- files


def read_records(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines prompt file (blank lines skipped)."""
    if not path.is_file():
        raise RequestError(f"--prompts {path}: no such file; write one with `mediagen eval --make-prompts TAG`")
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise RequestError(f"{path}:{i}: not a JSON record ({e.msg})") from None
    if not out:
        raise RequestError(f"--prompts {path}: the file holds no records")
    return out


def write_text(path: Path, text: str) -> None:
    """Atomic text write."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_png(path: Path, image: Image.Image) -> None:
    """Atomic PNG write."""
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def write_records(path: Path, records: list[dict[str, Any]]) -> None:
    """Write records as JSON lines (atomically)."""
    write_text(path, "".join(json.dumps(r) + "\n" for r in records))


# ----------------------------------------------------------------------------- generation


def generate(task: Task, model: str, n: int, seed: int, api: Any, steps: int | None = None,
             options: Mapping[str, Any] | None = None) -> list[Any]:
    """n outputs for a task (images, or ClipOutputs for the video modes): the world's own answer, or a model
    run through the Python API; options are further request fields (sampler, guidance)."""
    if model == WORLD_MODEL:
        return [task.world] * n
    from mediagen.schema import Control, Extend, GenerationRequest

    fields: dict[str, Any] = {"prompt": task.record["prompt"], "model": model, "seed": seed, "n": n, "steps": steps,
                              **(options or {})}
    if task.mode in ("t2i", "i2i") or task.mode in VIDEO_MODES:
        fields.update(width=task.width, height=task.height)
    if task.mode in VIDEO_MODES:
        return _generate_clips(task, fields, api)
    if task.image is not None:
        fields["image"] = task.image
    if task.mask is not None:
        fields["mask"] = task.mask
    if task.extend is not None:
        left, top, right, bottom = task.extend
        fields["extend"] = Extend(left=left, top=top, right=right, bottom=bottom)
    if task.strength is not None:
        fields["strength"] = task.strength
    if task.control is not None:
        fields["controls"] = [Control(kind=task.control[0], image=task.control[1])]
    req = GenerationRequest(**{k: v for k, v in fields.items() if v is not None})
    return list(api.generate(req).images)


def _generate_clips(task: Task, fields: dict[str, Any], api: Any) -> list[ClipOutput]:
    """Clips for a video task: frames and rate, the first frame (i2v) or input clip and strength (v2v), and
    a soundtrack when the record has sounds."""
    from mediagen.schema import GenerationRequest, Mode

    fields.update(mode=Mode(task.mode), frames=task.frames, fps=task.fps, audio="sound" in task.record)
    if task.mode == "i2v":
        fields["image"] = task.image
    if task.mode == "v2v":
        fields.update(video=task.video, strength=task.strength)
    result = api.generate(GenerationRequest(**{k: v for k, v in fields.items() if v is not None}))
    return [ClipOutput(o.frames, o.audio, o.sample_rate) for o in result.outputs if o.kind == "video"]


def run(records: list[dict[str, Any]], model: str, mode: str, n: int, size: tuple[int, int], seed: int = 0,
        steps: int | None = None, progress: bool = False,
        options: Mapping[str, Any] | None = None) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """Generate and score every record; returns one row per output and the output images."""  # fmt: skip
    api = None
    if model != WORLD_MODEL:
        from mediagen.api import Mediagen

        api = Mediagen()
    shape_model = load_shape_model()
    rows, images = [], []
    t0 = time.time()
    for i, rec in enumerate(records):
        task = prepare(rec, mode, size[0], size[1], with_world=model == WORLD_MODEL)
        outs = generate(task, model, n, seed + i, api, steps, options)
        for j, img in enumerate(outs):
            res = score(task, img, model=shape_model)
            rows.append({"index": i, "sample": j, "tag": rec.get("tag", "untagged"), "prompt": rec["prompt"], **res})
            images.append(as_array(img))
        if progress:
            print(f"\r{i + 1}/{len(records)} records ({time.time() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return rows, images


# ----------------------------------------------------------------------------- report


def _means(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of every numeric per-output value (kept, seam, layout, control score, ...)."""
    acc: dict[str, list[float]] = {}
    for r in rows:
        flat = dict(r)
        if isinstance(r.get("control"), dict):
            flat.update({f"control_{k}": v for k, v in r["control"].items()})
        for k, v in flat.items():
            if k in ("index", "sample") or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            acc.setdefault(k, []).append(float(v))
    return {k: float(np.mean(v)) for k, v in sorted(acc.items())}


def report(rows: list[dict[str, Any]], model: str, mode: str, prompts: str, n: int, seconds: float) -> dict[str, Any]:
    """The JSON report: GenEval summary over outputs, mean per-mode values, and every row."""
    summary = summarize([{"tag": r["tag"]} for r in rows], [r["correct"] for r in rows])
    return {"model": model, "mode": mode, "prompts": prompts, "n_per_prompt": n, "outputs": len(rows),
            "seconds": round(seconds, 2), **summary, "means": _means(rows), "rows": rows}  # fmt: skip


def contact_sheet(images: list[np.ndarray], rows: list[dict[str, Any]], columns: int = 8, thumb: int = 128) -> Image.Image:
    """A grid of outputs `thumb` pixels tall (clips as frame strips), each framed green (correct) or red,
    with its tag under it."""
    aspect = max((img.shape[1] / img.shape[0] for img in images), default=1.0)
    tw = round(thumb * aspect)
    cols = max(1, min(columns if aspect < 2 else max(1, columns // 3), len(images) or 1))
    cell_w, cell_h = tw + 6, thumb + 24
    sheet = Image.new("RGB", (cols * cell_w, max(1, -(-len(images) // cols)) * cell_h), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for k, (img, row) in enumerate(zip(images, rows)):
        x, y = (k % cols) * cell_w, (k // cols) * cell_h
        pic = Image.fromarray(img).resize((round(thumb * img.shape[1] / img.shape[0]), thumb), Image.LANCZOS)
        color = (40, 200, 80) if row["correct"] else (220, 50, 50)
        draw.rectangle([x, y, x + pic.width + 5, y + thumb + 5], fill=color)
        sheet.paste(pic, (x + 3, y + 3))
        draw.text((x + 3, y + thumb + 8), row["tag"][:24], fill=(230, 230, 230))
    return sheet


def html_page(rep: dict[str, Any], sample_files: list[str]) -> str:
    """A self-contained page listing the scores and every sample with its verdict."""
    esc = html.escape
    tags = "".join(f"<tr><td>{esc(t)}</td><td>{v['accuracy']:.3f}</td><td>{v['n']}</td></tr>" for t, v in rep["tags"].items())
    means = "".join(f"<tr><td>{esc(k)}</td><td>{v:.4g}</td></tr>" for k, v in rep["means"].items())
    cells = []
    for row, f in zip(rep["rows"], sample_files):
        mark = "ok" if row["correct"] else "wrong"
        why = "; ".join(row.get("reasons", [])) or ("correct" if row["correct"] else "")
        cells.append(f'<figure class="{mark}"><img src="{esc(f)}" alt=""><figcaption><b>{esc(row["tag"])}</b> '
                     f'{esc(row["prompt"])}<br><small>{esc(why)}</small></figcaption></figure>')  # fmt: skip
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>mediagen eval: {esc(rep['model'])}</title>
<style>body{{font-family:sans-serif;background:#181818;color:#ddd}} table{{border-collapse:collapse}}
td{{padding:2px 10px;border-bottom:1px solid #333}} figure{{display:inline-block;width:150px;margin:4px;vertical-align:top}}
img{{width:146px;image-rendering:pixelated;border:3px solid}} .ok img{{border-color:#2c5}} .wrong img{{border-color:#d33}}
figcaption{{font-size:11px}}</style></head><body>
<h1>{esc(rep['model'])} &middot; {esc(rep['mode'])}</h1><p>overall (mean of tag accuracies): <b>{rep['overall']:.3f}</b>
over {rep['outputs']} outputs from {esc(rep['prompts'])}</p>
<table><tr><th>tag</th><th>accuracy</th><th>n</th></tr>{tags}</table><h2>means</h2><table>{means}</table>
<h2>samples</h2>{''.join(cells)}</body></html>
"""


def write_outputs(out: Path, rep: dict[str, Any], images: list[np.ndarray]) -> None:
    """report.json, samples/*.png, contact_sheet.png and index.html under `out`."""
    files = []
    for row, img in zip(rep["rows"], images):
        name = f"samples/{row['index']:04d}-{row['sample']}.png"
        write_png(out / name, Image.fromarray(img))
        files.append(name)
    write_text(out / "report.json", json.dumps(rep, indent=2) + "\n")
    write_png(out / "contact_sheet.png", contact_sheet(images, rep["rows"]))
    write_text(out / "index.html", html_page(rep, files))


# ----------------------------------------------------------------------------- command line


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 128x128") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"--size {text!r}: at least 16x16")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    """Options of `mediagen eval`."""
    p = argparse.ArgumentParser(prog="mediagen eval", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--model", "-m", default="builtin", help="model id, or 'world' for the world's own renders")
    p.add_argument("--mode", default="t2i", choices=MODES)
    p.add_argument("--prompts", type=Path, default=None, help=f"JSON-lines records (default: {DEFAULT_PROMPTS.name})")
    p.add_argument("--n", type=int, default=1, help="outputs per record")
    p.add_argument("--limit", type=int, default=None, help="use only the first N records")
    p.add_argument("--tags", default=None, help="comma-separated tags to keep")
    p.add_argument("--size", type=parse_size, default=(128, 128), help="WIDTHxHEIGHT of outputs (default 128x128)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--sampler", default=None, help="sampler of every generation (default: the model's)")
    p.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the model's)")
    p.add_argument("--out", type=Path, default=None, help="folder for report.json, samples, contact sheet, page")
    p.add_argument("--json", action="store_true", help="print the report (without rows) as JSON")
    p.add_argument("--make-prompts", metavar="CATEGORY", default=None,
                   help=f"write held-out records instead: one of {', '.join(GENEVAL_TAGS)} or 'all' "
                        f"({' or '.join(VIDEO_TAGS)} with --mode {' / '.join(VIDEO_MODES)})")  # fmt: skip
    p.add_argument("--count", type=int, default=200, help="records per category for --make-prompts")
    p.add_argument("--control", choices=CONTROL_KINDS, default=None, help="add a control map to made records")
    p.add_argument("--split", default="test", choices=("test", "train"), help="phrasing split for --make-prompts")
    p.add_argument("-o", "--output", type=Path, default=None, help="file for --make-prompts (default: stdout)")
    return p


def make_prompts(args: argparse.Namespace) -> int:
    """Write records for one or every category."""
    tags: tuple[str, ...] = (args.make_prompts,)
    if args.make_prompts == "all":
        tags = VIDEO_TAGS if args.mode in VIDEO_MODES else GENEVAL_TAGS
    if args.count < 1:
        raise RequestError("--count must be at least 1")
    rng = np.random.default_rng(args.seed)
    records = [r for t in tags for r in make_records(t, args.count, rng, args.mode, args.control, args.split)]
    if args.output is None:
        sys.stdout.write("".join(json.dumps(r) + "\n" for r in records))
    else:
        write_records(args.output, records)
        print(f"wrote {len(records)} records to {args.output}", file=sys.stderr)
    return 0


def evaluate(args: argparse.Namespace) -> int:
    """Generate, score and report."""
    if args.n < 1:
        raise RequestError("--n must be at least 1")
    path = args.prompts or DEFAULT_PROMPTS
    records = read_records(path)
    if args.tags:
        keep = set(args.tags.split(","))
        records = [r for r in records if r.get("tag") in keep]
    if args.limit is not None:
        records = records[: args.limit]
    if not records:
        raise RequestError("no records left after --tags / --limit")
    t0 = time.time()
    options = {k: v for k, v in (("sampler", args.sampler), ("guidance", args.guidance)) if v is not None}
    rows, images = run(records, args.model, args.mode, args.n, args.size, args.seed, args.steps,
                       progress=not args.json, options=options)  # fmt: skip
    rep = report(rows, args.model, args.mode, str(path), args.n, time.time() - t0)
    if args.out is not None:
        write_outputs(args.out, rep, images)
    if args.json:
        print(json.dumps({k: v for k, v in rep.items() if k != "rows"}, indent=2))
    else:
        print(f"{args.model} {args.mode}: overall {rep['overall']:.3f} over {rep['outputs']} outputs")
        for t, v in rep["tags"].items():
            print(f"  {t:<14} {v['accuracy']:.3f}  (n={v['n']})")
        if args.out is not None:
            print(f"wrote {args.out / 'report.json'} and {args.out / 'index.html'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `mediagen eval`."""
    args = build_parser().parse_args(argv)
    try:
        return make_prompts(args) if args.make_prompts else evaluate(args)
    except MediagenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
