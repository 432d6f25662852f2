"""Clips per second of the built-in world (sample + simulate + render 16 frames [+ sound + caption]) on one core."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from mediagen.world.clip_captions import describe_clip  # noqa: E402
from mediagen.world.clips import render_clip, sample_clip  # noqa: E402
from mediagen.world.physics import simulate  # noqa: E402
from mediagen.world.sound import render_soundtrack  # noqa: E402


def bench(size: int, n: int, n_frames: int) -> dict[str, float]:
    """Rates at size x size: sampling, render only, and the whole pipeline (clips/s)."""
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    specs = [sample_clip(rng, n_frames=n_frames) for _ in range(n)]
    t_sample = time.perf_counter() - t0
    sims = [simulate(s) for s in specs]
    t0 = time.perf_counter()
    for s, sim in zip(specs, sims):
        render_clip(s, size, size, simulation=sim)
    t_render = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    for _ in range(n):
        clip = render_clip(sample_clip(rng, n_frames=n_frames), size, size)
        render_soundtrack(clip)
        describe_clip(clip, rng)
    t_all = time.perf_counter() - t0
    return {"sample": n / t_sample, "render": n / t_render, "all": n / t_all}


def main() -> None:
    """Print clips/s at 64^2 and 128^2."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--frames", type=int, default=16)
    args = ap.parse_args()
    for size in (64, 128):
        r = bench(size, args.n, args.frames)
        print(f"{size}x{size}, {args.frames} frames: {r['all']:5.2f} clips/s (sample+render+sound+caption), "
              f"{r['render']:5.2f} renders/s, {r['sample']:5.1f} samples/s")  # fmt: skip


if __name__ == "__main__":
    main()
