"""Noise-level schedules in the VE parametrisation x = x0 + sigma * eps (descending, ending at 0)."""

from __future__ import annotations

import math

import torch


def append_zero(sigmas: torch.Tensor) -> torch.Tensor:
    """Append the final sigma = 0."""
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. 2022 (EDM), eq. 5: n noise levels spaced in sigma^(1/rho), then 0."""
    ramp = torch.linspace(0, 1, n)
    min_inv, max_inv = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return append_zero((max_inv + ramp * (min_inv - max_inv)) ** rho)


def exponential_sigmas(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """n noise levels evenly spaced in log sigma, then 0."""
    return append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), n).exp())


def flow_times(n: int, shift: float = 1.0, t_max: float = 1.0) -> torch.Tensor:
    """Rectified-flow times from t_max to 0 (n + 1 values), with SD3's timestep shift (Esser et al. 2024)."""
    t = torch.linspace(t_max, 0.0, n + 1)
    return shift * t / (1 + (shift - 1) * t)


FLOW_T_MAX = 1.0 - 1e-4  # t = 1 maps to sigma = inf in VE space; this is sigma ~ 1e4


def flow_sigmas(n: int, shift: float = 1.0) -> torch.Tensor:
    """Flow times mapped to VE sigmas by sigma = t / (1 - t) (so y = x_t / (1 - t) = x0 + sigma * eps)."""
    t = flow_times(n, shift).clamp(max=FLOW_T_MAX)
    return t / (1 - t)


def guidance_floor(sigmas: torch.Tensor, end: float) -> float:
    """The sigma at or below which guidance stops when it covers the first `end` share of the steps of the
    schedule `sigmas` (n + 1 levels, descending, ending at 0): ceil(end * n) steps stay guided."""
    n = len(sigmas) - 1
    if not 0.0 < end <= 1.0:
        raise ValueError(f"guidance end must be in (0, 1], got {end}")
    return float(sigmas[min(n, math.ceil(end * n - 1e-9))])


def sigma_to_flow_t(sigma: torch.Tensor) -> torch.Tensor:
    """Inverse of the flow mapping: t = sigma / (1 + sigma)."""
    return sigma / (1 + sigma)


def vp_sigmas_from_alphas(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Discrete VP schedule (DDPM) as VE sigmas: sigma = sqrt((1 - a) / a), ascending with timestep."""
    return ((1 - alphas_cumprod) / alphas_cumprod).sqrt()
