"""Time the built-in model on this machine: load, text-to-image at default settings, and each piece.

    python benchmarks/builtin_speed.py [--runs 5] [--steps N] [--guidance-end E] [--threads 2]
                                       [--dtype auto|fp32|bf16]

Prints the median and min of each figure over --runs, and the load average (other processes skew timings).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def _timed(fn, runs: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _fmt(name: str, ts: list[float]) -> str:
    return f"{name:<34} median {statistics.median(ts) * 1000:8.1f} ms   min {min(ts) * 1000:8.1f} ms"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--steps", type=int, default=None, help="default: the model's")
    p.add_argument("--guidance-end", type=float, default=None, help="default: the model's")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", choices=("auto", "fp32", "bf16"), default="auto")
    p.add_argument("--prompt", default="a small red metal sphere left of a large blue cube")
    a = p.parse_args()

    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(a.threads)
    from mediagen.families.builtin import load
    from mediagen.families.builtin.pipeline import make_velocity, text_cond
    from mediagen.model import Job
    from mediagen.schema import GenerationRequest, Mode

    dtype = {"auto": None, "fp32": torch.float32, "bf16": torch.bfloat16}[a.dtype]
    model = load("builtin", dtype=dtype)
    print(f"import + load: {time.perf_counter() - t0:.2f} s   (bf16 autocast: {model.bf16}, threads {a.threads}, "
          f"load average {os.getloadavg()[0]:.2f})")
    caps = model.capabilities()
    steps = a.steps or caps.default_steps
    end = caps.default_guidance_end if a.guidance_end is None else a.guidance_end
    req = GenerationRequest(prompt=a.prompt, seed=1, steps=steps, guidance_end=end)
    job = Job(request=req, mode=Mode.T2I)
    label = f"t2i 128x128, {steps} steps, CFG on {end:g} of them"
    print(_fmt(label, _timed(lambda: model.generate(job, lambda p: None), a.runs)))

    ctx, mask = model._encode_text(a.prompt, "")
    print(_fmt("text encoding (prompt + negative)", _timed(lambda: model._encode_text(a.prompt, ""), a.runs)))
    v = make_velocity(model.unet, bf16=model.bf16)
    c = model.config.ae.latent_channels
    cond = {**text_cond(model.unet, ctx, mask, bf16=model.bf16),
            "extra": torch.cat([torch.ones(2, 1, 32, 32), torch.zeros(2, c, 32, 32)], 1)}
    x, t = torch.randn(2, c, 32, 32), torch.full((2,), 0.5)
    with torch.inference_mode():
        print(_fmt("UNet step (batch 2)", _timed(lambda: v(x, t, cond), a.runs * 4)))
        one = {k: val[:1] for k, val in cond.items()}
        print(_fmt("UNet step (batch 1, unguided)", _timed(lambda: v(x[:1], t[:1], one), a.runs * 4)))
    z = torch.randn(1, c, 32, 32)
    print(_fmt("decode 128x128", _timed(lambda: model.decode(z), a.runs)))
    print(f"load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
