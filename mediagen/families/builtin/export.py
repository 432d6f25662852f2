"""Export the latest training checkpoints into the shipped weights folder (atomically).

    python -m mediagen.families.builtin.export [--run /work/runs/builtin] [--out mediagen/families/builtin/weights]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from mediagen.families.builtin.config import AEConfig, ModelConfig, UNetConfig
from mediagen.families.builtin.model import WEIGHT_FILES, weights_dir
from mediagen.families.builtin.train import BASE_CARD, DEFAULT_RUN, load_checkpoint

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def _cfg(cls, text: str):
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(text).items()})


def _loss_curve(path: Path, last_step: int, points: int = 12) -> list[dict]:
    """About `points` rows of a loss CSV up to `last_step`, evenly spaced, the last one included."""
    if not path.exists():
        return []
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= last_step]
    if len(rows) <= points:
        return rows
    idx = sorted({round(i * (len(rows) - 1) / (points - 1)) for i in range(points)})
    return [rows[i] for i in idx]


def sample_sheet(run: Path, step: int) -> Path:
    """Where a score run's contact sheet of a step lies (`benchmarks/builtin_geneval.py --sheet`)."""
    return run / f"samples_step{step}.png"


def score_table(run: Path, step: int) -> list[str]:
    """Markdown rows of every scores_step<N>.json in the run (benchmarks/builtin_geneval.py output), and of
    RUN/autoencoded.json (the same benchmark with --autoencoded: the ceiling of this latent space)."""
    found = []
    for p in run.glob("scores_step*.json"):
        m = re.fullmatch(r"scores_step(\d+)(?:_(\w+))?\.json", p.name)
        if m:
            found.append((int(m.group(1)), json.loads(p.read_text())))
    if not found:
        return ["Not measured yet: run `python benchmarks/builtin_geneval.py --json RUN/scores_step<N>.json`."]
    found.sort(key=lambda x: (x[0], x[1].get("scorer", ""), next(iter(x[1]["tags"].values()))["n"]))
    tags = list(found[-1][1]["tags"])
    rows = [
        "GenEval-style accuracy (`benchmarks/builtin_geneval.py`: the world's held-out prompts, the first n per "
        "tag, one 128x128 image each at the model's default steps and guidance, scored by `mediagen.world.score`; "
        "scorer = the first 8 hex digits of the shape classifier's SHA-256, `earlier` for the detector before "
        "soft edges were handled):",
        "",
        "| UNet step | scorer | n per tag | overall | " + " | ".join(tags) + " |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in tags) + " |",
    ]
    ceiling = run / "autoencoded.json"
    named = [("world renders through the autoencoder (ceiling)", json.loads(ceiling.read_text()))] if ceiling.exists() else []
    for st, rep in found:
        named.append((f"{st}" + (" (these weights)" if st == step else ""), rep))
    for name, rep in named:
        rows.append(f"| {name} | {rep.get('scorer', 'earlier')} | {rep['tags'][tags[0]]['n']} | {rep['overall']:.3f} | "
                    + " | ".join(f"{rep['tags'][t]['accuracy']:.2f}" for t in tags) + " |")
    mine = [rep for st, rep in found if st == step and rep.get("by_combo")]
    if mine:
        split = "; ".join(f"{tag} {v['heldout_combo']['accuracy']:.2f} on a colour-shape pair held out of training "
                          f"(n={v['heldout_combo']['n']}), {v['seen_combos']['accuracy']:.2f} on the others "
                          f"(n={v['seen_combos']['n']})"
                          for tag, v in mine[-1]["by_combo"].items() if {"heldout_combo", "seen_combos"} <= set(v))
        rows += ["", f"These weights by colour-shape pair: {split}."]
    return rows


def edit_table(run: Path, step: int) -> list[str]:
    """Markdown rows of RUN/edits_step<step>*.json (benchmarks/builtin_edits.py output), model next to world."""
    rows: dict[str, dict] = {}
    for p in sorted(run.glob(f"edits_step{step}*.json")):
        rows.update({k: v for k, v in json.loads(p.read_text()).items() if isinstance(v, dict) and "model" in v})
    if not rows:
        return []
    keys = ("correct", "kept", "content", "seam", "layout", "adherence")
    out = ["", "Edit modes (`benchmarks/builtin_edits.py`: held-out prompts of every tag, 128x128; `world` is the "
                "world's own answer to the same task; blend = training-free inpainting on the same weights):", "",
           "| task | " + " | ".join(keys) + " |", "| --- | " + " | ".join("---" for _ in keys) + " |"]
    for name, both in rows.items():
        for who in ("model", "world"):
            v = both[who]
            out.append(f"| {name} ({who}, n={v['n']}) | "
                       + " | ".join(f"{v[k]:.3f}" if k in v else "" for k in keys) + " |")
    return out


def base_history(card: str) -> list[str]:
    """An earlier model card's lines below its title, every heading one level deeper."""
    lines = card.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    while lines and not lines[0].strip():
        lines = lines[1:]
    return [f"#{ln}" if ln.startswith("#") else ln for ln in lines]


def model_card(cfg: ModelConfig, ae_ck: dict, unet_ck: dict, run: Path, n_params: tuple[int, int]) -> str:
    """MODEL_CARD.md text from the checkpoints and the run's logs."""
    curve = _loss_curve(run / "unet_loss.csv", unet_ck["step"])
    base = run / BASE_CARD
    scenes = curve[-1]["scenes"] if curve else "?"
    seen = unet_ck["step"] * int(unet_ck.get("batch", 64))
    lines = [
        "# builtin — mediagen's own text-to-image model",
        "",
        "A small latent text-to-image model trained from scratch, on a 2-core CPU, on renders of mediagen's "
        "procedural world (`mediagen.world`, split `train` only). One UNet does text-to-image, image-to-image, "
        "inpainting and outpainting (mask and masked-image latent are extra inputs, trained in).",
        "",
        "## Architecture",
        f"- Autoencoder: conv, f{cfg.ae.factor}, {cfg.ae.latent_channels} latent channels, channels "
        f"{list(cfg.ae.channels)}, {n_params[0] / 1e6:.2f} M params; latents scaled by {cfg.ae.scale:.4f} after "
        f"subtracting {cfg.ae.shift:.4f}.",
        f"- UNet: channels {list(cfg.unet.channels)}, {cfg.unet.blocks} res block(s) per level down "
        f"({cfg.unet.blocks + 1} up), self + cross attention at levels "
        f"{[i for i, a in enumerate(cfg.unet.attention) if a]}"
        + (" (each token also given its image-plane position as sinusoids)" if cfg.unet.position else "")
        + f", {n_params[1] / 1e6:.2f} M params, input {cfg.unet.in_channels} channels "
        "(noisy latent, mask, masked latent).",
        f"- Text: all-MiniLM-L6-v2 per-token hidden states of layers {list(cfg.text_layers)} (6 = last; 384-d "
        f"each, side by side) with their attention mask (up to {cfg.text_max_tokens} tokens)"
        + (f", refined by {cfg.unet.refiner_layers} trainable self-attention layers ({cfg.unet.refiner_dim}-d, "
           "added back to the states)" if cfg.unet.refiner_layers else "")
        + ", cross-attended; their masked mean joins the time embedding.",
        "- Objective: rectified flow (x_t = (1 - t) x0 + t eps, target eps - x0), logit-normal t, caption dropout "
        "0.1 for classifier-free guidance, EMA weights shipped.",
        "",
        "## Training",
        f"- Data: {scenes} world scenes rendered at 128x128, 3 captions each from `mediagen.world.captions.describe`.",
        f"- Autoencoder: {ae_ck['step']} steps, {ae_ck['elapsed'] / 60:.1f} min"
        + (f", then its decoder alone {ae_ck['decoder_step']} steps, {ae_ck['decoder_elapsed'] / 60:.1f} min"
           if "decoder_step" in ae_ck else "")
        + f" (64x64 crops, batch 32); PSNR {ae_ck.get('psnr', float('nan')):.2f} dB on 64 held-out 128x128 renders.",
        f"- UNet: {unet_ck['step']} steps (about {seen} samples), {unet_ck['elapsed'] / 60:.1f} min of training on a "
        f"2-core CPU ({'bf16 autocast' if unet_ck.get('bf16', True) else 'fp32'})"
        + (", on top of the model this run started from (its card is under 'Started from' below)."
           if base.exists() else "."),
        "",
        "## Learning curve (UNet, mean training loss)",
        "",
        "| step | minutes | loss |",
        "| --- | --- | --- |",
        *[f"| {r['step']} | {r['minutes']} | {r['loss']} |" for r in curve],
        "",
        "## Scores",
    ]
    lines += ["", *score_table(run, unet_ck["step"]), *edit_table(run, unet_ck["step"])]
    if sample_sheet(run, unet_ck["step"]).exists():
        lines += ["", "Samples (`samples.png`): the first outputs of each tag in the score run of these weights, one "
                      "row per tag in the table's order, framed green where the scorer counted them correct."]
    notes = run / "card_notes.md"  # what the trainer learned about this run, in words
    if notes.exists():
        lines += ["", notes.read_text().strip()]
    lines += ["", "## Limits", "",
              "It knows only the world it was trained on: simple solids and stick figures, its colours, sizes, "
              "materials, patterns, backgrounds and spatial relations. Sizes from 64 to 256 pixels (multiples of "
              "32); trained at 128x128."]
    if base.exists():
        lines += ["", "## Started from", "", "This run began from an exported model; its card, one heading level down:",
                  "", *base_history(base.read_text())]
    lines.append("")
    lines.insert(2, f"Exported {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
    lines.insert(3, "")
    return "\n".join(lines)


def export(run: Path, out: Path, dtype: torch.dtype = torch.float16, unet_path: Path | None = None) -> Path:
    """Write autoencoder.safetensors, unet.safetensors (EMA), config.json and MODEL_CARD.md to `out`."""
    from safetensors.torch import save_file

    from mediagen.families.builtin.nets import AutoEncoder, UNet, count_params

    ae_ck = load_checkpoint(run / "ae_final.pt")
    if (run / "aedec_final.pt").exists():  # fine-tuned decoder, same encoder (so the same latent space)
        dec = load_checkpoint(run / "aedec_final.pt")
        enc = [k for k in ae_ck["model"] if k.startswith("encoder.")]
        if not all(torch.equal(ae_ck["model"][k], dec["model"][k]) for k in enc):
            raise SystemExit("aedec_final.pt was not fine-tuned from this ae_final.pt (the encoders differ)")
        ae_ck = {**ae_ck, "model": dec["model"], "psnr": dec["psnr"], "decoder_step": dec["step"],
                 "decoder_elapsed": dec["elapsed"]}
    unet_ck = load_checkpoint(unet_path or run / "unet_last.pt")
    cfg = ModelConfig(ae=_cfg(AEConfig, ae_ck["config"]), unet=_cfg(UNetConfig, unet_ck["config"]),
                      text_max_tokens=int(unet_ck.get("max_tokens", ModelConfig().text_max_tokens)),
                      text_layers=tuple(unet_ck.get("text_layers", ModelConfig().text_layers)))
    ae, unet = AutoEncoder(cfg.ae), UNet(cfg.unet)
    ae.load_state_dict(ae_ck["model"])  # checks the keys before anything is written
    unet.load_state_dict(unet_ck["ema"])
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, module in zip(WEIGHT_FILES, (ae, unet)):
            sd = {k: v.detach().to(dtype).contiguous() for k, v in module.state_dict().items()}
            save_file(sd, str(tmp / name), metadata={"format": "pt", "family": "mediagen-builtin"})
        (tmp / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
        (tmp / "MODEL_CARD.md").write_text(model_card(cfg, ae_ck, unet_ck, run, (count_params(ae), count_params(unet))))
        sheet = sample_sheet(run, unet_ck["step"])
        if sheet.exists():
            shutil.copyfile(sheet, tmp / "samples.png")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
        old = out.with_name(f".{out.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m mediagen.families.builtin.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=str(DEFAULT_RUN), help="training run directory")
    p.add_argument("--out", default=str(weights_dir()), help="weights folder to (re)write")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="fp16")
    p.add_argument("--unet", default=None, help="UNet checkpoint to export (default: RUN/unet_last.pt)")
    a = p.parse_args(argv)
    out = export(Path(a.run), Path(a.out), DTYPES[a.dtype], Path(a.unet) if a.unet else None)
    total = sum(f.stat().st_size for f in out.iterdir())
    print(f"exported {out} ({total / 1e6:.1f} MB): {', '.join(sorted(f.name for f in out.iterdir()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
