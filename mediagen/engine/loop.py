"""The one denoising loop every mode runs: noise (or a noised input), a sampler, optional known regions."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from mediagen.engine.denoisers import Denoiser, keep_known
from mediagen.engine.noise import NoiseStream, seeded_noise
from mediagen.engine.samplers import Callback, get_sampler


def batch_noise(shape: tuple[int, ...], seeds: Sequence[int], *, device: Any = "cpu") -> torch.Tensor:
    """One noise tensor per seed, stacked: (len(seeds), *shape); item i is the same alone or in a batch."""
    return torch.cat([seeded_noise((1, *shape), s, device=device) for s in seeds])


def start_index(n_steps: int, strength: float | None) -> int:
    """First schedule index to run for img2img at `strength` (SDEdit, Meng et al. 2022); 0 = from noise."""
    if strength is None:
        return 0
    skip = int(round(n_steps * (1.0 - strength)))
    return min(max(skip, 0), n_steps - 1)


def run_sigmas(sigmas: torch.Tensor, init: torch.Tensor | None, strength: float | None) -> torch.Tensor:
    """The part of the schedule a run walks: all of it from noise, its tail for img2img at `strength`."""
    return sigmas[start_index(len(sigmas) - 1, strength) if init is not None else 0 :]


@torch.no_grad()
def denoise(denoiser: Denoiser, *, shape: tuple[int, ...], seeds: Sequence[int], sigmas: torch.Tensor,
            sampler: str, cond: Any, init: torch.Tensor | None = None, strength: float | None = None,
            known: torch.Tensor | None = None, known_mask: torch.Tensor | None = None,
            callback: Callback | None = None, device: Any = "cpu") -> torch.Tensor:
    """Sample a batch of len(seeds) items of `shape` (C, H, W) and return the final x0 estimate.

    init: (B, C, H, W) clean latent to start from at `strength` (img2img); known/known_mask: clean latent kept
    where known_mask == 0 (1 = regenerate), for blended inpainting on models without inpaint channels.
    """
    eps = batch_noise(shape, seeds, device=device)  # (B, C, H, W)
    sigmas = run_sigmas(sigmas, init, strength).to(device)
    x = eps * sigmas[0] if init is None else init + eps * sigmas[0]
    if known is not None and known_mask is not None:
        denoiser = keep_known(denoiser, known, known_mask)
    sample = get_sampler(sampler)
    return sample(denoiser, x, sigmas, cond, noise=NoiseStream([int(s) + 7919 for s in seeds]), callback=callback)
