"""Train the built-in model on the procedural world: `data` (render shards), `ae` (autoencoder), `unet`.

    python -m mediagen.families.builtin.train data --scenes 60000
    python -m mediagen.families.builtin.train ae --minutes 15
    python -m mediagen.families.builtin.train unet --minutes 120 --resume

Every stage is seeded, checkpoints atomically every few minutes and resumes from its latest checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from mediagen.families.builtin import data as D
from mediagen.families.builtin.config import AEConfig, UNetConfig
from mediagen.families.builtin.nets import AutoEncoder, UNet, count_params
from mediagen.settings import cpu_has_fast_bf16

DEFAULT_RUN = Path(os.environ.get("MEDIAGEN_BUILTIN_RUN", "/work/runs/builtin"))
BASE_CARD = "base_card.md"  # in a run started from an exported model: that model's card

PREVIEW_PROMPTS = (
    "a small red metal sphere left of a large blue cube",
    "a green cylinder",
    "two yellow cones",
    "a purple pyramid right of a white sphere",
    "a large orange cube on a sky background",
    "a blue sphere above a red cube",
    "three pink spheres",
    "a cyan cone behind a brown cylinder",
)


# ---------------------------------------------------------------------------------------------------------
# Shared plumbing


def log_line(run: Path, name: str, text: str) -> None:
    """Print a line and append it to run/<name>.log."""
    line = f"[{time.strftime('%H:%M:%S')}] {text}"
    print(line, flush=True)
    with open(run / f"{name}.log", "a") as f:
        f.write(line + "\n")


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temp file, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def autocast(bf16: bool):
    """bf16 autocast on the CPU when `bf16`, else a context that changes nothing."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)


def load_checkpoint(path: Path) -> dict:
    """A checkpoint written by save_atomic (tensors, numbers, strings and dicts only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def rng_state(rng: np.random.Generator) -> dict:
    """RNG states of numpy and torch, for exact resumption."""
    return {"numpy": json.dumps(rng.bit_generator.state), "torch": torch.get_rng_state()}


def set_rng_state(rng: np.random.Generator, state: dict) -> None:
    """Inverse of rng_state."""
    rng.bit_generator.state = json.loads(state["numpy"])
    torch.set_rng_state(state["torch"])


class CsvLog:
    """Append-only CSV loss log."""

    def __init__(self, path: Path, fields: list[str]):
        self.path, self.fields = path, fields
        if not path.exists():
            with open(path, "w", newline="") as f:
                csv.writer(f).writerow(fields)

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([row[k] for k in self.fields])


class Stopper:
    """Turns SIGTERM/SIGINT into a flag so the loop saves before it exits."""

    def __init__(self):
        self.stop = False
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, self._handle)

    def _handle(self, signum, _frame):
        self.stop = True
        print(f"[{time.strftime('%H:%M:%S')}] got {signal.Signals(signum).name}: saving and stopping", flush=True)


def threads_for_load(max_threads: int) -> int:
    """Fewer threads when other processes keep the cores busy: a starved thread stalls every parallel op
    at its barrier, so on a shared machine one thread often trains faster than two."""
    others = os.getloadavg()[0] - torch.get_num_threads()
    return max(1, min(max_threads, int(os.cpu_count() or 1) - int(others + 0.5)))


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, step: int, decay: float) -> None:
    """EMA of weights with warm-up: decay_t = min(decay, (1 + t) / (10 + t))."""
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for pe, pm in zip(ema.parameters(), model.parameters()):
            pe.lerp_(pm.detach(), 1 - d)


def state_hash(sd: dict[str, torch.Tensor]) -> str:
    """Short content hash of a state dict."""
    h = hashlib.sha256()
    for k in sorted(sd):
        h.update(k.encode())
        h.update(sd[k].detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def to_img(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def from_img(a: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float in [-1, 1], channels_last."""
    x = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x.contiguous(memory_format=torch.channels_last)


def save_grid(images: np.ndarray, path: Path, cols: int = 4) -> None:
    """Save (N, H, W, 3) uint8 images as one PNG grid (atomic)."""
    from PIL import Image

    n, h, w, _ = images.shape
    rows = (n + cols - 1) // cols
    grid = np.full((rows * h, cols * w, 3), 255, np.uint8)
    for i, im in enumerate(images):
        grid[(i // cols) * h : (i // cols + 1) * h, (i % cols) * w : (i % cols + 1) * w] = im
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    Image.fromarray(grid).save(tmp)
    os.replace(tmp, path)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between uint8 image stacks."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * math.log10(255.0**2 / max(mse, 1e-10)))


# ---------------------------------------------------------------------------------------------------------
# data


def cmd_data(args: argparse.Namespace) -> None:
    """Render shards of training scenes (split='train') until --scenes are cached."""
    run = Path(args.run)
    root = run / "data"
    root.mkdir(parents=True, exist_ok=True)
    held = root / "heldout.npz"
    if not held.exists():  # scenes from another seed range, never trained on: for AE PSNR and eyeballing
        idx = 0
        tmp_root = root / "heldout_tmp"
        D.render_shard(tmp_root, idx, shard_size=args.heldout, size=args.size, seed=args.seed + 7777,
                       captions=args.captions)
        os.replace(D.shard_path(tmp_root, idx), held)
    D.render_dataset(root, scenes=args.scenes, shard_size=args.shard_size, size=args.size, seed=args.seed,
                     captions=args.captions, prompt_share=args.prompt_share, log=lambda s: log_line(run, "data", s))


# ---------------------------------------------------------------------------------------------------------
# Autoencoder


def ae_loss(rec: torch.Tensor, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """L1 + 0.5 MSE + 0.5 L1 on image gradients (keeps the world's crisp edges); rec, x (B, 3, H, W).

    weight (B, 1, H, W), optional: per-pixel weights (e.g. heavier on objects, which are a small share of the
    pixels but all that the scorer reads); each term is a weighted mean.
    """
    w = torch.ones_like(x[:, :1]) if weight is None else weight
    mean = lambda t, wt: (t * wt).sum() / (wt.sum() * t.shape[1])  # noqa: E731
    d = rec - x
    l1, mse = mean(d.abs(), w), mean(d.square(), w)
    gx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    gy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    edge = mean(gx(d).abs(), torch.maximum(w[..., :, 1:], w[..., :, :-1])) + \
        mean(gy(d).abs(), torch.maximum(w[..., 1:, :], w[..., :-1, :]))
    return l1 + 0.5 * mse + 0.5 * edge


def object_weights(objects: np.ndarray, extra: float) -> torch.Tensor:
    """Per-pixel loss weights (B, 1, H, W): 1 + extra on object pixels and the 2 pixels around them."""
    m = torch.from_numpy(objects).float()[:, None]  # (B, 1, H, W)
    return 1.0 + extra * F.max_pool2d(m, 5, stride=1, padding=2)


def random_crops(rng: np.random.Generator, images: np.ndarray, batch: int, crop: int,
                 *aligned: np.ndarray) -> list[np.ndarray]:
    """[(batch, crop, crop, 3) random crops of random images] + the same crops of each array in `aligned`
    (N, H, W, ...)."""
    n, h, w, _ = images.shape
    idx = rng.integers(0, n, batch)
    ys, xs = rng.integers(0, h - crop + 1, batch), rng.integers(0, w - crop + 1, batch)
    return [np.stack([a[i, y : y + crop, x : x + crop] for i, y, x in zip(idx, ys, xs)]) for a in (images, *aligned)]


@torch.no_grad()
def ae_eval(ae: AutoEncoder, images: np.ndarray, batch: int = 32, *, bf16: bool = False
            ) -> tuple[float, np.ndarray]:
    """Mean PSNR of reconstructions and the reconstructions (N, H, W, 3) uint8."""
    ae.eval()
    outs = []
    for i in range(0, len(images), batch):
        with autocast(bf16):
            outs.append(to_img(ae(from_img(images[i : i + batch]))))
    ae.train()
    rec = np.concatenate(outs)
    return float(np.mean([psnr(a, b) for a, b in zip(rec, images)])), rec


@torch.no_grad()
def latent_stats(ae: AutoEncoder, images: np.ndarray, batch: int = 32, *, bf16: bool = False) -> tuple[float, float]:
    """Mean and std of raw latents over `images`."""
    ae.eval()
    zs = []
    for i in range(0, len(images), batch):
        with autocast(bf16):
            zs.append(ae.encoder(from_img(images[i : i + batch])).float())
    z = torch.cat(zs)
    return float(z.mean()), float(z.std())


def ae_config(args: argparse.Namespace) -> AEConfig:
    return AEConfig(latent_channels=args.latent_channels, channels=tuple(args.ae_channels), blocks=args.ae_blocks)


def _ae_from(ck: dict) -> tuple[AutoEncoder, AEConfig]:
    cfg = AEConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(ck["config"]).items()})
    ae = AutoEncoder(cfg).to(memory_format=torch.channels_last)
    ae.load_state_dict(ck["model"])
    return ae, cfg


def cmd_ae(args: argparse.Namespace) -> None:
    """Train the autoencoder on random crops of cached renders; record latent shift/scale at the end.

    With --decoder-only, fine-tune just the decoder of the finished autoencoder (its encoder, and so the
    latent space the UNet learned, stay fixed), as SD's ft-MSE decoder was.
    """
    run = Path(args.run)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    name = "aedec" if args.decoder_only else "ae"
    ckpt_path = run / f"{name}_last.pt"
    if args.decoder_only:
        ae, cfg = _ae_from(load_checkpoint(run / "ae_final.pt"))
        ae.encoder.requires_grad_(False)
    else:
        cfg = ae_config(args)
        ae = AutoEncoder(cfg).to(memory_format=torch.channels_last)
    params = [p for p in ae.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    step, elapsed = 0, 0.0
    if args.resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        ae.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, elapsed = ck["step"], ck["elapsed"]
        set_rng_state(rng, ck["rng"])
        log_line(run, name, f"resumed at step {step} ({elapsed / 60:.1f} min trained)")
    trained = sum(p.numel() for p in params)
    log_line(run, name, f"autoencoder {count_params(ae) / 1e6:.2f} M params ({trained / 1e6:.2f} M trained), "
             f"config {asdict(cfg)}, object weight {args.object_weight}")

    held = np.load(run / "data" / "heldout.npz")["images"][: args.eval_images]
    shards, images, objects = [], np.zeros((0, 1, 1, 3), np.uint8), np.zeros((0, 1, 1), bool)
    log = CsvLog(run / f"{name}_loss.csv", ["step", "minutes", "loss", "img_per_s", "psnr"])
    stopper = Stopper()

    def save() -> None:
        save_atomic({"model": ae.state_dict(), "opt": opt.state_dict(), "step": step, "elapsed": elapsed,
                     "rng": rng_state(rng), "config": json.dumps(asdict(cfg))}, ckpt_path)

    t_start, t_save, t_scan, t_eval = time.time(), time.time(), 0.0, time.time()
    budget = args.minutes * 60
    losses: list[float] = []
    while not stopper.stop and time.time() - t_start < budget and step < args.max_steps:
        if time.time() - t_scan > 120:  # pick up shards rendered meanwhile
            found = D.list_shards(run / "data")[: args.max_shards]
            if len(found) > len(shards):
                shards = found
                images, objects = D.load_images(shards), D.load_objects(shards)
                log_line(run, name, f"training images: {len(images)} from {len(shards)} shards")
            t_scan = time.time()
        if len(images) == 0:
            time.sleep(10)
            continue
        t0 = time.time()
        crops, obj = random_crops(rng, images, args.batch, args.crop, objects)
        x = from_img(crops)
        lr = args.lr * min(1.0, (step + 1) / 200)
        for g in opt.param_groups:
            g["lr"] = lr
        with autocast(args.bf16):
            if args.decoder_only:
                with torch.no_grad():
                    z = ae.encoder(x)
                rec = ae.decoder(z)
            else:
                rec = ae(x)
        loss = ae_loss(rec.float(), x, object_weights(obj, args.object_weight) if args.object_weight else None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        dt = time.time() - t0
        elapsed += dt
        losses.append(loss.item())
        if step % 50 == 0:
            p = ""
            if time.time() - t_eval > 120:
                p, rec_img = ae_eval(ae, held, bf16=args.bf16)
                save_grid(np.concatenate([held[:8], rec_img[:8]]), run / f"{name}_samples" / f"step_{step:06d}.png", 8)
                t_eval = time.time()
            log.write({"step": step, "minutes": round(elapsed / 60, 2), "loss": round(float(np.mean(losses)), 5),
                       "img_per_s": round(args.batch / dt, 1), "psnr": p if p == "" else round(p, 2)})
            log_line(run, name, f"step {step} loss {np.mean(losses):.4f} {args.batch / dt:.1f} crops/s"
                     + (f" heldout PSNR {p:.2f} dB" if p != "" else ""))
            losses = []
        if time.time() - t_save > args.save_every * 60:
            save()
            t_save = time.time()
    save()
    p, rec_img = ae_eval(ae, held, bf16=args.bf16)
    save_grid(np.concatenate([held[:8], rec_img[:8]]), run / f"{name}_samples" / f"step_{step:06d}.png", 8)
    final = cfg
    if not args.decoder_only:
        shift, std = latent_stats(ae, images[rng.permutation(len(images))[:1024]] if len(images) else held,
                                  bf16=args.bf16)
        final = replace(cfg, shift=shift, scale=1.0 / std)
    save_atomic({"model": ae.state_dict(), "config": json.dumps(asdict(final)), "step": step,
                 "elapsed": elapsed, "psnr": p}, run / f"{name}_final.pt")
    log_line(run, name, f"done: step {step}, {elapsed / 60:.1f} min, heldout PSNR {p:.2f} dB, "
             f"latent shift {final.shift:.4f} scale {final.scale:.4f}")


def checkpoint_from_export(folder: Path, run: Path) -> dict:
    """A UNet checkpoint (the exported weights as model and EMA, step 0) from an exported model folder
    (config.json + safetensors, e.g. the shipped weights); the folder's autoencoder becomes RUN/ae_final.pt when
    the run has none, so training can go on from a model with no run directory behind it."""
    from safetensors.torch import load_file

    from mediagen.families.builtin.config import ModelConfig
    from mediagen.families.builtin.model import WEIGHT_FILES
    from mediagen.media import atomic_write

    missing = [n for n in ("config.json", *WEIGHT_FILES) if not (folder / n).is_file()]
    if missing:
        raise SystemExit(f"--init-from {folder}: the folder lacks {', '.join(missing)} (an exported model folder "
                         "holds config.json, autoencoder.safetensors and unet.safetensors)")
    cfg = ModelConfig.from_dict(json.loads((folder / "config.json").read_text()))
    ae_sd, unet_sd = ({k: v.float() for k, v in load_file(str(folder / n)).items()} for n in WEIGHT_FILES)
    if not (run / "ae_final.pt").exists():
        save_atomic({"model": ae_sd, "config": json.dumps(asdict(cfg.ae)), "step": 0, "elapsed": 0.0,
                     "source": str(folder)}, run / "ae_final.pt")
    card = folder / "MODEL_CARD.md"
    if card.is_file() and not (run / BASE_CARD).exists():  # the history the run's own export carries on
        atomic_write(run / BASE_CARD, lambda tmp: shutil.copyfile(card, tmp))
    return {"model": unet_sd, "ema": unet_sd, "step": 0, "elapsed": 0.0, "config": json.dumps(asdict(cfg.unet)),
            "ae_hash": state_hash(ae_sd), "text_layers": list(cfg.text_layers)}


def load_frozen_ae(run: Path) -> tuple[AutoEncoder, str]:
    """The finished autoencoder (with its latent scale) and its content hash."""
    ck = load_checkpoint(run / "ae_final.pt")
    ae, _ = _ae_from(ck)
    ae.eval().requires_grad_(False)
    return ae, state_hash(ck["model"])


# ---------------------------------------------------------------------------------------------------------
# UNet


@torch.no_grad()
def encode_shard(ae: AutoEncoder, shard: Path, out: Path, captions: int, batch: int = 64, *, bf16: bool = False
                 ) -> None:
    """Cache one shard's scaled latents (fp16), latent-cell instance maps and captions (atomic)."""
    z = np.load(shard)
    images = z["images"]
    lats = []
    for i in range(0, len(images), batch):
        with autocast(bf16):
            lats.append(ae.encode(from_img(images[i : i + batch])).float().numpy().astype(np.float16))
    inst = D.downsample_instance(z["instance"], ae.cfg.factor)
    if "captions" in z.files and z["captions"].shape[1] >= captions:
        caps = z["captions"][:, :captions]
    else:
        caps = D.caption_specs(z["specs"], captions, seed=int(D.SHARD_RE.search(shard.name).group(1)))
    D.save_npz_atomic(out, latents=np.concatenate(lats), instance=inst, captions=caps)


def load_latent_set(run: Path, ae: AutoEncoder, ae_hash: str, captions: int, log, max_new: int = 1 << 30, *,
                    bf16: bool = False) -> D.LatentSet:
    """Encode up to `max_new` shards not yet cached for this autoencoder, then load every cached one."""
    cache = run / "data" / f"latents_{ae_hash}"
    parts, metas = [], []
    for shard in D.list_shards(run / "data"):
        out = cache / shard.name
        if not out.exists():
            if max_new <= 0:
                continue
            t0 = time.time()
            encode_shard(ae, shard, out, captions, bf16=bf16)
            max_new -= 1
            log(f"encoded {shard.name} in {time.time() - t0:.1f} s")
        parts.append(np.load(out))
        metas.append(shard_metas(shard, len(parts[-1]["captions"])))
    if not parts:
        return D.LatentSet(np.zeros((0, ae.cfg.latent_channels, 1, 1), np.float16), np.zeros((0, 1, 1), np.uint8),
                           np.zeros((0, 1), str), np.zeros(0, bool), np.zeros(0, str))
    all_metas = np.concatenate(metas)
    return D.LatentSet(np.concatenate([p["latents"] for p in parts]), np.concatenate([p["instance"] for p in parts]),
                       np.concatenate([p["captions"] for p in parts]), np.char.str_len(all_metas) > 0, all_metas)


def shard_metas(shard: Path, n: int) -> np.ndarray:
    """(n,) str: the prompt record (JSON) each scene of a rendered shard was built from, '' for sampled scenes
    (all of them in older shards)."""
    with np.load(shard) as z:
        if "prompt_metas" not in z.files:
            return np.full(n, "", dtype=str)
        return z["prompt_metas"].astype(str)


TEXT_WIDTH = 384  # one MiniLM layer's state


def unet_config(args: argparse.Namespace, latent_channels: int) -> UNetConfig:
    layers = len(args.text_layers)
    return UNetConfig(latent_channels=latent_channels, channels=tuple(args.unet_channels), blocks=args.unet_blocks,
                      attention=tuple(bool(a) for a in args.unet_attention), head_dim=args.head_dim,
                      context_dim=TEXT_WIDTH * layers, context_groups=layers,
                      refiner_layers=args.refiner_layers, refiner_dim=args.refiner_dim, position=args.position)


def add_parts(cfg: UNetConfig, args: argparse.Namespace) -> UNetConfig:
    """The config of a checkpoint the run starts from, given the position features --position and the text
    refiner --refiner-layers ask for: a UNet without them gets them (their output projections start at zero,
    so the model starts as it was)."""
    if args.position and not cfg.position:
        cfg = replace(cfg, position=True)
    if not args.refiner_layers or cfg.refiner_layers == args.refiner_layers:
        return cfg
    if cfg.refiner_layers:
        raise SystemExit(f"--refiner-layers {args.refiner_layers}: the checkpoint already has a "
                         f"{cfg.refiner_layers}-layer text refiner; leave the option out to keep it")
    return replace(cfg, refiner_layers=args.refiner_layers, refiner_dim=args.refiner_dim)


def widen_context(sd: dict[str, torch.Tensor], old: tuple[int, ...], new: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """A UNet state dict that read text layers `old` rewritten to read layers `new` (a superset) with the same
    outputs: weights on the added layers start at zero, their norm at identity, so training starts from the
    model as it was and learns what the added layers tell."""
    missing = [i for i in old if i not in new]
    if missing:
        raise SystemExit(f"text layers {list(new)} drop layers {missing} that the checkpoint reads ({list(old)})")
    out = dict(sd)
    for k, w in sd.items():
        if k.endswith(("cross_attn.kv.weight", "pool_proj.weight")):  # (out, 384 * len(old))
            blocks = w.split(TEXT_WIDTH, dim=1)
            out[k] = torch.cat([blocks[old.index(i)] if i in old else torch.zeros_like(blocks[0]) for i in new], 1)
        elif k in ("ctx_norm.weight", "ctx_norm.bias"):  # (384 * len(old),)
            blocks, fill = w.split(TEXT_WIDTH), 1.0 if k.endswith("weight") else 0.0
            out[k] = torch.cat([blocks[old.index(i)] if i in old else torch.full_like(blocks[0], fill) for i in new])
    return out


class Batch(NamedTuple):
    """One training batch: clean latents (B, C, h, w), inpaint channels (B, 1 + C, h, w), captions ('' =
    unconditional), the scenes' indices in the set (B,) and whether each caption is the scene's prompt (B,)."""

    x0: torch.Tensor
    extra: torch.Tensor
    captions: list[str]
    index: np.ndarray
    from_prompt: np.ndarray


def make_batch(rng: np.random.Generator, ds: D.LatentSet, batch: int, p_uncond: float, p_full: float,
               p_no_color: float = 0.0, p_prompt: float = 0.0) -> Batch:
    """A batch of random scenes with random captions (a share p_no_color of them without colour words). A
    share p_prompt of it is drawn from the prompt-record scenes with their prompt as caption."""
    idx = rng.integers(0, len(ds), batch)
    by_prompt = (rng.random(batch) < p_prompt) & ds.prompted.any()  # (B,) bool
    if by_prompt.any():
        idx[by_prompt] = rng.choice(np.flatnonzero(ds.prompted), int(by_prompt.sum()))
    x0 = torch.from_numpy(ds.latents[idx].astype(np.float32))
    masks = torch.from_numpy(np.stack([D.random_mask(rng, ds.instance[i], p_full) for i in idx]))[:, None]
    extra = torch.cat([masks, x0 * (1 - masks)], dim=1)
    k = ds.captions.shape[1]
    cols = np.where(by_prompt, 0, rng.integers(0, k, batch))
    caps = [str(ds.captions[i, c]) if rng.random() >= p_uncond else "" for i, c in zip(idx, cols)]
    caps = [D.drop_colors(c) if c and rng.random() < p_no_color else c for c in caps]
    return Batch(x0, extra, caps, idx, by_prompt & np.array([c != "" for c in caps]))


def ground_targets(tokenizer, b: Batch, ds: D.LatentSet, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each caption token's object lies, for captions that are their scene's prompt: (B, tokens, h, w)
    float masks at latent-cell resolution and (B, tokens) bool for the tokens that name an object.

    `tokenizer` must pad and truncate as the text encoder does, so token k here is context token k."""
    h, w = ds.instance.shape[1:]
    masks = torch.zeros(len(b.captions), tokens, h, w)
    named = torch.zeros(len(b.captions), tokens, dtype=torch.bool)
    if ds.metas is None or not b.from_prompt.any():
        return masks, named
    rows = np.flatnonzero(b.from_prompt)
    encs = tokenizer.encode_batch([b.captions[r] for r in rows])
    for r, enc in zip(rows, encs):
        meta = json.loads(str(ds.metas[b.index[r]]))
        words: dict[int, str] = {}
        for wid, tok in zip(enc.word_ids, enc.tokens):
            if wid is not None:
                words[wid] = words.get(wid, "") + tok.removeprefix("##")
        where = D.grounded_words([words.get(k, "") for k in range(max(words, default=-1) + 1)], meta)
        inst = torch.from_numpy(ds.instance[b.index[r]].astype(np.int64))  # (h, w)
        entry = [torch.isin(inst, torch.tensor(list(ids))).float() for ids in D.entry_ids(meta)]
        for k, wid in enumerate(enc.word_ids[:tokens]):
            if wid in where and entry[where[wid]].any():
                masks[r, k], named[r, k] = entry[where[wid]], True
    return masks, named


def ground_loss(maps: list[torch.Tensor], masks: torch.Tensor, named: torch.Tensor) -> torch.Tensor:
    """Token grounding loss (TokenCompose, Wang et al. 2024) over cross-attention weights `maps` (B, hw, M):
    each object-naming token's attention over the image should fall inside its object's mask, (1 - inside
    share)^2, plus a per-cell binary cross-entropy of the weights against the share of the cell the object
    covers (soft, so an object smaller than a cell still pulls its token there); mean over named tokens."""
    if not named.any():
        return maps[0].new_zeros(()).float()
    g = named.float()  # (B, M)
    total = 0.0
    for p in maps:
        p = p.float()
        side = int(round(p.shape[1] ** 0.5))
        t = F.adaptive_avg_pool2d(masks, side).flatten(2).transpose(1, 2)  # (B, hw, M) share of cell inside
        inside = (p * t).sum(1) / p.sum(1).clamp_min(1e-6)  # (B, M)
        token = ((1 - inside).square() * g).sum() / g.sum()
        bce = F.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), t, reduction="none").mean(1)  # (B, M)
        total = total + token + (bce * g).sum() / g.sum()
    return total / len(maps)


def lr_decay(step: int, start: int | None, end: int | None, floor: float = 0.1) -> float:
    """Learning-rate factor: 1 before `start`, linear down to `floor` at `end`, then `floor`."""
    if start is None or end is None or step < start:
        return 1.0
    return max(floor, 1.0 - (1.0 - floor) * (step - start) / max(1, end - start))


def flow_loss(unet: UNet, x0: torch.Tensor, extra: torch.Tensor, ctx: torch.Tensor, ctx_mask: torch.Tensor,
              t: torch.Tensor, noise: torch.Tensor, maps: list[torch.Tensor] | None = None, *, bf16: bool = False
              ) -> torch.Tensor:
    """Rectified-flow loss (Liu et al. 2022; Esser et al. 2024): x_t = (1 - t) x0 + t eps, target eps - x0.
    With `maps`, the cross-attention weights of the pass are appended to it."""
    tt = t[:, None, None, None]
    xt = (1 - tt) * x0 + tt * noise  # (B, C, h, w)
    inp = torch.cat([xt, extra], dim=1) if unet.cfg.inpaint else xt
    with autocast(bf16):
        v = unet(inp.contiguous(memory_format=torch.channels_last), t, ctx, ctx_mask, maps)
    return (v.float() - (noise - x0)).square().mean()


@torch.no_grad()
def preview(unet: UNet, ae: AutoEncoder, text, steps: int = 20, guidance: float = 3.0, *, bf16: bool = False
            ) -> np.ndarray:
    """Images (N, H, W, 3) uint8 for PREVIEW_PROMPTS, sampled through the shared engine."""
    from mediagen.families.builtin.pipeline import sample

    unet.eval()
    states, mask = text.encode(list(PREVIEW_PROMPTS) + [""], bf16=bf16)
    c, h = ae.cfg.latent_channels, 32
    outs = []
    for i in range(len(PREVIEW_PROMPTS)):
        z = sample(unet, ctx=states[i : i + 1], ctx_mask=mask[i : i + 1], neg_ctx=states[-1:], neg_mask=mask[-1:],
                   shape=(c, h, h), seeds=[i], steps=steps, guidance=guidance, sampler="euler", shift=1.0, bf16=bf16)
        with autocast(bf16):
            outs.append(to_img(ae.decode(z.contiguous(memory_format=torch.channels_last))))
    unet.train()
    return np.concatenate(outs)


def cmd_unet(args: argparse.Namespace) -> None:
    """Train the latent UNet (text-to-image + inpainting/outpainting channels) with rectified flow."""
    from mediagen.families.builtin.text import TextEncoder

    if not 0 <= args.ground_min_t < 1:
        raise SystemExit(f"--ground-min-t {args.ground_min_t}: give a noise level in [0, 1); at 1 or above no "
                         "sample would count")
    run = Path(args.run)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    ckpt_path = run / "unet_last.pt"
    resume = args.resume and ckpt_path.exists()
    source = None if resume or not args.init_from else Path(args.init_from)
    if source is not None and ckpt_path.exists():
        raise SystemExit(f"{ckpt_path} exists: move it away to start from {args.init_from}, or pass --resume")
    if source is not None and not source.exists():
        raise SystemExit(f"--init-from {args.init_from}: no such checkpoint (a unet_*.pt of a training run) or "
                         "exported model folder")
    exported = checkpoint_from_export(source, run) if source is not None and source.is_dir() else None
    ae, ae_hash = load_frozen_ae(run)
    layers = tuple(args.text_layers)
    cfg = unet_config(args, ae.cfg.latent_channels)
    step, elapsed, ck, warm_from = 0, 0.0, None, 0
    if resume or source is not None:
        ck = exported or load_checkpoint(ckpt_path if resume else source)
        cfg = UNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(ck["config"]).items()})
        if ck["ae_hash"] != ae_hash:
            raise SystemExit(f"checkpoint was trained on autoencoder {ck['ae_hash']}, found {ae_hash}")
        ck_layers = tuple(ck.get("text_layers", (6,)))
        if resume:
            layers = ck_layers
        elif layers != ck_layers:
            ck = {**ck, "model": widen_context(ck["model"], ck_layers, layers),
                  "ema": widen_context(ck["ema"], ck_layers, layers)}
            cfg = replace(cfg, context_dim=TEXT_WIDTH * len(layers), context_groups=len(layers))
        if not resume:
            cfg = add_parts(cfg, args)
    text = TextEncoder(max_tokens=args.max_tokens, layers=layers)
    unet = UNet(cfg).to(memory_format=torch.channels_last)
    ema = UNet(cfg).to(memory_format=torch.channels_last)
    ema.load_state_dict(unet.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr, betas=(0.9, 0.999), weight_decay=0.01)
    if ck is not None:
        fresh = {k: v for k, v in unet.state_dict().items()  # parts just added: the refiner, position features
                 if k not in ck["model"] and (k.startswith("refiner.") or k.split(".")[-2] == "pos")}
        unet.load_state_dict({**fresh, **ck["model"]})
        ema.load_state_dict({**fresh, **ck["ema"]})
        step, elapsed = ck["step"], ck["elapsed"]
        if resume:
            opt.load_state_dict(ck["opt"])
            set_rng_state(rng, ck["rng"])
            warm_from = ck.get("warm_from", 0)
            log_line(run, "unet", f"resumed at step {step} ({elapsed / 60:.1f} min trained)")
        else:  # fresh optimizer and warm-up; step and time carry on from the source
            warm_from = step
            log_line(run, "unet", f"initialised from {args.init_from} (step {step}, text layers {list(layers)}, "
                     f"text refiner layers {cfg.refiner_layers})")
    log_line(run, "unet", f"unet {count_params(unet) / 1e6:.2f} M params, config {asdict(cfg)}, ae {ae_hash}")
    ds = load_latent_set(run, ae, ae_hash, args.captions, lambda s: log_line(run, "unet", s), args.encode_per_scan,
                         bf16=args.bf16)
    log_line(run, "unet", f"training set: {len(ds)} scenes")
    log = CsvLog(run / "unet_loss.csv", ["step", "minutes", "loss", "img_per_s", "scenes"])
    stopper = Stopper()

    def save() -> None:
        save_atomic({"model": unet.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step,
                     "elapsed": elapsed, "rng": rng_state(rng), "config": json.dumps(asdict(cfg)),
                     "ae_hash": ae_hash, "batch": args.batch, "max_tokens": args.max_tokens,
                     "text_layers": list(layers), "warm_from": warm_from, "bf16": args.bf16}, ckpt_path)

    t_start = t_save = t_scan = t_prev = time.time()
    budget = args.minutes * 60
    losses: list[float] = []
    grounds: list[float] = []
    if args.adaptive_threads:
        torch.set_num_threads(threads_for_load(args.threads))
    from tqdm import tqdm

    bar = tqdm(desc="unet", unit="step", initial=step, mininterval=30, file=sys.stderr)
    while not stopper.stop and time.time() - t_start < budget and step < args.max_steps:
        if time.time() - t_scan > args.rescan_every * 60:
            ds = load_latent_set(run, ae, ae_hash, args.captions, lambda s: log_line(run, "unet", s),
                                 args.encode_per_scan, bf16=args.bf16)
            t_scan = time.time()
        if len(ds) == 0:
            time.sleep(10)
            continue
        t0 = time.time()
        b = make_batch(rng, ds, args.batch, args.p_uncond, args.p_full, args.p_no_color, args.p_prompt)
        x0, extra = b.x0, b.extra
        ctx, ctx_mask = text.encode(b.captions, bf16=args.bf16)
        t = torch.sigmoid(torch.randn(args.batch))  # logit-normal (SD3)
        noise = torch.randn_like(x0)
        lr = args.lr * min(1.0, (step - warm_from + 1) / args.warmup) * lr_decay(step, args.decay_from, args.decay_until)
        for g in opt.param_groups:
            g["lr"] = lr
        maps: list[torch.Tensor] | None = [] if args.ground_weight > 0 else None
        loss = flow_loss(unet, x0, extra, ctx, ctx_mask, t, noise, maps, bf16=args.bf16)
        if maps is not None:
            masks, named = ground_targets(text.tokenizer, b, ds, ctx.shape[1])
            g = ground_loss(maps, masks, named & (t >= args.ground_min_t)[:, None])
            grounds.append(g.item())
            loss = loss + args.ground_weight * g
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        ema_update(ema, unet, step, args.ema)
        step += 1
        dt = time.time() - t0
        elapsed += dt
        losses.append(loss.item())
        bar.update(1)
        if step % 25 == 0:
            log.write({"step": step, "minutes": round(elapsed / 60, 2), "loss": round(float(np.mean(losses)), 5),
                       "img_per_s": round(args.batch / dt, 1), "scenes": len(ds)})
            ground = f" grounding {np.mean(grounds):.4f}" if grounds else ""
            log_line(run, "unet", f"step {step} loss {np.mean(losses):.4f}{ground} {args.batch / dt:.1f} img/s "
                     f"({elapsed / 60:.1f} min trained, {torch.get_num_threads()} threads)")
            losses, grounds = [], []
        if args.adaptive_threads and step % 5 == 0:
            torch.set_num_threads(threads_for_load(args.threads))
        if time.time() - t_save > args.save_every * 60:
            save()
            t_save = time.time()
        if time.time() - t_prev > args.sample_every * 60:
            save_grid(preview(ema, ae, text, bf16=args.bf16), run / "unet_samples" / f"step_{step:06d}.png")
            t_prev = time.time()
    bar.close()
    save()
    if not stopper.stop:
        save_grid(preview(ema, ae, text, bf16=args.bf16), run / "unet_samples" / f"step_{step:06d}.png")
    log_line(run, "unet", f"stopped at step {step} ({elapsed / 60:.1f} min trained)")


# ---------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mediagen train builtin", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=str(DEFAULT_RUN), help="run directory (data, checkpoints, logs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", choices=("auto", "bf16", "fp32"), default="auto",
                   help="compute dtype: bf16 autocast or fp32; auto takes bf16 where the CPU has native bf16 dot "
                        "products (AMX-BF16 or AVX512-BF16) and fp32 elsewhere, where bf16 runs many times slower")
    sub = p.add_subparsers(dest="stage", required=True)

    d = sub.add_parser("data", help="render training scenes into shards")
    d.add_argument("--scenes", type=int, default=60000)
    d.add_argument("--shard-size", type=int, default=500)
    d.add_argument("--size", type=int, default=128)
    d.add_argument("--captions", type=int, default=3, help="captions per scene")
    d.add_argument("--prompt-share", type=float, default=0.0,
                   help="share of new scenes built from GenEval-style training prompts (the prompt is a caption)")
    d.add_argument("--heldout", type=int, default=256, help="held-out scenes for evaluation")

    a = sub.add_parser("ae", help="train the autoencoder")
    a.add_argument("--minutes", type=float, default=15)
    a.add_argument("--resume", action="store_true")
    a.add_argument("--decoder-only", action="store_true",
                   help="fine-tune only the decoder of ae_final.pt (the latent space stays as the UNet knows it)")
    a.add_argument("--max-steps", type=int, default=1 << 62, help="stop at this step count")
    a.add_argument("--batch", type=int, default=32)
    a.add_argument("--crop", type=int, default=64)
    a.add_argument("--lr", type=float, default=3e-4)
    a.add_argument("--latent-channels", type=int, default=4)
    a.add_argument("--ae-channels", type=int, nargs="+", default=[32, 64, 128])
    a.add_argument("--ae-blocks", type=int, default=1)
    a.add_argument("--eval-images", type=int, default=64)
    a.add_argument("--object-weight", type=float, default=0.0,
                   help="extra loss weight on object pixels (and 2 pixels around them); 0 = every pixel alike")
    a.add_argument("--max-shards", type=int, default=24, help="shards of renders held in memory")
    a.add_argument("--save-every", type=float, default=3)

    u = sub.add_parser("unet", help="train the latent UNet")
    u.add_argument("--minutes", type=float, default=120)
    u.add_argument("--resume", action="store_true")
    u.add_argument("--max-steps", type=int, default=1 << 62, help="stop at this step count")
    u.add_argument("--batch", type=int, default=64)
    u.add_argument("--lr", type=float, default=3e-4)
    u.add_argument("--warmup", type=int, default=300)
    u.add_argument("--ema", type=float, default=0.999)
    u.add_argument("--p-uncond", type=float, default=0.1, help="caption dropout for classifier-free guidance")
    u.add_argument("--p-full", type=float, default=0.5, help="share of batches with the all-regenerate mask")
    u.add_argument("--p-no-color", type=float, default=0.3, help="share of captions with colour words removed")
    u.add_argument("--p-prompt", type=float, default=0.0,
                   help="share of each batch drawn from prompt-record scenes, captioned with their prompt")
    u.add_argument("--ground-weight", type=float, default=0.0,
                   help="weight of the token grounding loss on prompt captions (0 = off): object words' "
                        "cross-attention should fall on their objects")
    u.add_argument("--ground-min-t", type=float, default=0.0,
                   help="apply the grounding loss only to samples at this noise level or above (1 = pure noise), "
                        "where the text alone has to say where each object goes")
    u.add_argument("--decay-from", type=int, default=None, help="step where the learning rate starts to fall")
    u.add_argument("--decay-until", type=int, default=None, help="step where it reaches a tenth")
    u.add_argument("--unet-channels", type=int, nargs="+", default=[64, 128, 192])
    u.add_argument("--unet-blocks", type=int, default=1)
    u.add_argument("--unet-attention", type=int, nargs="+", default=[0, 1, 1])
    u.add_argument("--head-dim", type=int, default=64)
    u.add_argument("--refiner-layers", type=int, default=0,
                   help="self-attention layers over the text tokens before the UNet reads them (0 = none); with "
                        "--init-from, added to a UNet that has none, starting as the identity")
    u.add_argument("--refiner-dim", type=int, default=256, help="width of those layers")
    u.add_argument("--position", action="store_true",
                   help="give the attention blocks each token's image-plane position; with --init-from, added to "
                        "a UNet that has none, starting as the identity")
    u.add_argument("--text-layers", type=int, nargs="+", default=[3, 6],
                   help="MiniLM hidden states the UNet reads, side by side (0 = embeddings, 6 = last layer)")
    u.add_argument("--init-from", default=None,
                   help="start from this UNet checkpoint, or from an exported model folder such as the shipped "
                        "weights (EMA and weights; fresh optimizer and warm-up), widening its text input when "
                        "--text-layers adds layers")
    u.add_argument("--max-tokens", type=int, default=64)
    u.add_argument("--captions", type=int, default=3, help="captions drawn per scene")
    u.add_argument("--save-every", type=float, default=4)
    u.add_argument("--sample-every", type=float, default=15)
    u.add_argument("--rescan-every", type=float, default=5, help="minutes between looks for new shards")
    u.add_argument("--adaptive-threads", action=argparse.BooleanOptionalAction, default=True,
                   help="drop to fewer threads while other processes load the cores")
    u.add_argument("--encode-per-scan", type=int, default=8, help="new shards encoded per look")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m mediagen.families.builtin.train` and `mediagen train builtin`."""
    args = build_parser().parse_args(argv)
    args.bf16 = args.dtype == "bf16" or (args.dtype == "auto" and cpu_has_fast_bf16())
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    Path(args.run).mkdir(parents=True, exist_ok=True)
    {"data": cmd_data, "ae": cmd_ae, "unet": cmd_unet}[args.stage](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
