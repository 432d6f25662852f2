"""Seeded noise drawn on the CPU, so a seed gives the same result on any device."""

from __future__ import annotations

import torch


def seeded_noise(shape: tuple[int, ...], seed: int, *, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise of `shape` from a CPU generator seeded with `seed`, moved to `device`."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed) % 2**63)
    return torch.randn(shape, generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)


class NoiseStream:
    """Fresh noise for ancestral/SDE samplers: one CPU generator per batch item, so an item's noise is the
    same whether it is generated alone or in a batch."""

    def __init__(self, seeds: list[int]):
        self._gens = [torch.Generator(device="cpu").manual_seed(int(s) % 2**63) for s in seeds]

    def __call__(self, like: torch.Tensor) -> torch.Tensor:
        """Noise shaped and typed like `like` (B, ...), with B == len(seeds)."""
        z = torch.cat([torch.randn((1, *like.shape[1:]), generator=g, dtype=torch.float32) for g in self._gens])
        return z.to(device=like.device, dtype=like.dtype)
