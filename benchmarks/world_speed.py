"""Scenes per second of the built-in world (sample + render + caption) on one core."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from mediagen.world import describe, render_scene, sample_scene  # noqa: E402


def bench(size: int, n: int, caption: bool) -> tuple[float, float]:
    """(scenes/s for sample + render [+ caption], scenes/s for render only) at size x size."""
    rng = np.random.default_rng(0)
    specs = [sample_scene(rng) for _ in range(n)]
    t0 = time.perf_counter()
    for s in specs:
        render_scene(s, size, size)
    t_render = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    for _ in range(n):
        s = sample_scene(rng)
        r = render_scene(s, size, size)
        if caption:
            describe(s, rng, render=r)
    t_all = time.perf_counter() - t0
    return n / t_all, n / t_render


def main() -> None:
    """Print scenes/s at 128^2 and 256^2."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    for size in (128, 256):
        full, render_only = bench(size, args.n, caption=True)
        print(f"{size}x{size}: {full:6.1f} scenes/s (sample+render+caption), {render_only:6.1f} renders/s")


if __name__ == "__main__":
    main()
