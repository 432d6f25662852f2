"""Cost and accuracy of joining generated pixels to the original (`mediagen.engine.masks.composite`).

    python benchmarks/mask_blend.py [--repeats 5] [--sizes 128x160,512x512,1024x1024]

For each size: a smooth picture, a "generated" copy 12 levels off with its own pixel noise and a red square,
and a box mask over the middle 60%. Prints the median time of the gradient blend and of the feather, and
how far the result lies from the picture the generated copy was made from at the mask's left edge, 4 and 16
pixels in (mean over the edge's rows, levels summed over the three channels: the feather fades the 12-level
offset in over its band and keeps it inside, the gradient blend removes it, leaving the copy's own noise).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from PIL import Image


def pictures(w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(original, generated, mask) of the size."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:h, 0:w]
    orig = np.stack([100 + 50 * np.sin(xs / 40.0), 80 + 20 * np.cos(ys / 25.0), 120 + 60 * xs / w], axis=2)
    orig = np.clip(np.rint(orig + rng.normal(0, 1.5, orig.shape)), 0, 255).astype(np.uint8)
    gen = orig.astype(float) + 12 + rng.normal(0, 1.5, orig.shape)
    gen[h // 2 - h // 16:h // 2 + h // 16, w // 2 - w // 16:w // 2 + w // 16] = (220, 20, 20)
    gen = np.clip(np.rint(gen), 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), np.float32)
    mask[h // 5:4 * h // 5, w // 5:4 * w // 5] = 1
    return orig, gen, mask


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--sizes", default="128x160,512x512,1024x1024", help="WxH list")
    p.add_argument("--blur", type=int, default=4)
    a = p.parse_args()

    from mediagen.engine.masks import composite
    from mediagen.engine.seams import DIRECT_SIDE

    print(f"mask blur {a.blur} px (feather); gradient: one-piece solve up to {DIRECT_SIDE} px a side; off by: at the "
          "edge / 4 px in / 16 px in")
    for size in a.sizes.split(","):
        w, h = (int(v) for v in size.lower().split("x"))
        orig, gen, mask = pictures(w, h)
        o, g = Image.fromarray(orig), Image.fromarray(gen)
        line = f"{w}x{h}:"
        for blend in ("gradient", "feather"):
            times = []
            for _ in range(a.repeats):
                t = time.perf_counter()
                out = np.asarray(composite(o, g, mask, a.blur, blend)).astype(int)
                times.append(time.perf_counter() - t)
            rows, x0 = slice(h // 5 + 8, 4 * h // 5 - 8), w // 5
            off = [np.abs(out[rows, x0 + k] - orig[rows, x0 + k].astype(int)).sum(-1).mean() for k in (0, 4, 16)]
            line += (f"  {blend}: median {1000 * statistics.median(times):.0f} ms, off by {off[0]:.1f} / "
                     f"{off[1]:.1f} / {off[2]:.1f}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
