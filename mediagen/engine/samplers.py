"""Samplers as plain functions over a denoiser D(x, sigma, cond) -> x0, in the style of k-diffusion.

Every sampler has the signature ``sampler(denoiser, x, sigmas, cond, *, noise=None, callback=None) -> x``:
``x`` starts at ``sigmas[0]`` noise level (VE space, x = x0 + sigma * eps), ``sigmas`` descends to 0,
``noise(like)`` draws fresh noise for stochastic samplers, and ``callback(StepInfo)`` runs after every step
(for progress and previews; it may raise to cancel). Samplers never import a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable

import torch

from mediagen.engine.denoisers import Denoiser

NoiseFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class StepInfo:
    """What a sampler reports after each step."""

    step: int  # 1-based
    total: int
    sigma: float
    x: torch.Tensor  # current sample
    denoised: torch.Tensor  # current prediction of the clean result (cheap to preview)


Callback = Callable[[StepInfo], None]


def _sig(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A scalar sigma broadcast to the batch: (B,)."""
    return sigma.to(x.device, torch.float32).expand(x.shape[0])


def _report(callback: Callback | None, i: int, sigmas: torch.Tensor, x: torch.Tensor, den: torch.Tensor) -> None:
    if callback is not None:
        callback(StepInfo(i + 1, len(sigmas) - 1, float(sigmas[i]), x, den))


def _default_noise(like: torch.Tensor) -> torch.Tensor:
    return torch.randn_like(like)


def ancestral_step(sigma_from: float, sigma_to: float, eta: float = 1.0) -> tuple[float, float]:
    """Split a step into a deterministic part (sigma_down) and fresh noise (sigma_up), as in k-diffusion."""
    if not eta or sigma_to == 0:
        return sigma_to, 0.0
    up = min(sigma_to, eta * math.sqrt(sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2))
    return math.sqrt(sigma_to**2 - up**2), up


@torch.no_grad()
def sample_euler(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, cond: Any, *,
                 noise: NoiseFn | None = None, callback: Callback | None = None) -> torch.Tensor:
    """Euler on the probability-flow ODE (Karras et al. 2022, Alg. 1 without the 2nd-order step).

    With a flow schedule this is exactly the flow-matching Euler sampler (x_t' = x_t + (t' - t) v).
    """
    for i in range(len(sigmas) - 1):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        den = denoiser(x, _sig(sigmas[i], x), cond)
        d = (x - den) / s
        x = x + d * (s_next - s)
        _report(callback, i, sigmas, x, den)
    return x


@torch.no_grad()
def sample_euler_ancestral(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, cond: Any, *,
                           noise: NoiseFn | None = None, callback: Callback | None = None,
                           eta: float = 1.0) -> torch.Tensor:
    """Euler ancestral: an Euler step to sigma_down, then fresh noise up to sigma_next (k-diffusion)."""
    noise = noise or _default_noise
    for i in range(len(sigmas) - 1):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        den = denoiser(x, _sig(sigmas[i], x), cond)
        down, up = ancestral_step(s, s_next, eta)
        x = x + (x - den) / s * (down - s)
        if up > 0:
            x = x + noise(x) * up
        _report(callback, i, sigmas, x, den)
    return x


@torch.no_grad()
def sample_heun(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, cond: Any, *,
                noise: NoiseFn | None = None, callback: Callback | None = None) -> torch.Tensor:
    """Heun's 2nd-order method (Karras et al. 2022, Alg. 1)."""
    for i in range(len(sigmas) - 1):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        den = denoiser(x, _sig(sigmas[i], x), cond)
        d = (x - den) / s
        x_next = x + d * (s_next - s)
        if s_next > 0:
            den2 = denoiser(x_next, _sig(sigmas[i + 1], x), cond)
            d2 = (x_next - den2) / s_next
            x_next = x + (d + d2) / 2 * (s_next - s)
        x = x_next
        _report(callback, i, sigmas, x, den)
    return x


@torch.no_grad()
def sample_dpmpp_2m(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, cond: Any, *,
                    noise: NoiseFn | None = None, callback: Callback | None = None) -> torch.Tensor:
    """DPM-Solver++(2M), multistep 2nd order in log-sigma (Lu et al. 2022, arXiv:2211.01095)."""
    old_den = None
    h_last = None
    for i in range(len(sigmas) - 1):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        den = denoiser(x, _sig(sigmas[i], x), cond)
        if s_next == 0:
            x = den
        else:
            h = math.log(s) - math.log(s_next)
            if old_den is None or h_last is None:
                d = den
            else:
                r = h_last / h
                d = (1 + 1 / (2 * r)) * den - (1 / (2 * r)) * old_den
            x = (s_next / s) * x - math.expm1(-h) * d
            h_last = h
        old_den = den
        _report(callback, i, sigmas, x, den)
    return x


@torch.no_grad()
def sample_ddim(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, cond: Any, *,
                noise: NoiseFn | None = None, callback: Callback | None = None,
                eta: float = 0.0) -> torch.Tensor:
    """DDIM (Song et al. 2021, eq. 12) written in VE space: re-noise the x0 prediction to the next level.

    eta = 0 is deterministic; eta = 1 matches ancestral sampling.
    """
    noise = noise or _default_noise
    for i in range(len(sigmas) - 1):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        den = denoiser(x, _sig(sigmas[i], x), cond)
        eps = (x - den) / s
        down, up = ancestral_step(s, s_next, eta)
        x = den + eps * down
        if up > 0:
            x = x + noise(x) * up
        _report(callback, i, sigmas, x, den)
    return x


SAMPLERS = MappingProxyType({
    "euler": sample_euler,
    "euler_a": sample_euler_ancestral,
    "heun": sample_heun,
    "dpmpp_2m": sample_dpmpp_2m,
    "dpmpp_2m_karras": sample_dpmpp_2m,
    "ddim": sample_ddim,
    "flow_euler": sample_euler,
})

# Samplers whose name asks for the Karras noise schedule rather than the model's default one.
KARRAS_SAMPLERS = frozenset({"dpmpp_2m_karras"})


def get_sampler(name: str) -> Callable[..., torch.Tensor]:
    """Look a sampler up by name, with an error listing the known ones."""
    try:
        return SAMPLERS[name]
    except KeyError:
        from mediagen.errors import UnsupportedError

        raise UnsupportedError(f"unknown sampler {name!r}; samplers: {', '.join(SAMPLERS)}") from None
