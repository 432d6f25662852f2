"""Denoiser wrappers: every model is seen by the samplers as D(x, sigma, cond) -> x0 in VE space."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]
VelocityFn = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]


def flow_denoiser(velocity: VelocityFn) -> Denoiser:
    """Wrap a rectified-flow model v(x_t, t, cond) = eps - x0 (Liu et al. 2022) as a VE-space denoiser.

    With y = x_t / (1 - t) and sigma = t / (1 - t), y = x0 + sigma * eps, so every VE sampler applies.
    """

    def denoise(y: torch.Tensor, sigma: torch.Tensor, cond: Any) -> torch.Tensor:
        s = sigma.reshape(-1, *([1] * (y.ndim - 1))).to(y.dtype)  # (B, 1, 1, 1)
        x_t = y / (1 + s)  # (B, C, H, W)
        t = sigma / (1 + sigma)  # (B,)
        v = velocity(x_t, t, cond)  # (B, C, H, W)
        return x_t - (s / (1 + s)) * v

    return denoise


def eps_denoiser(eps_model: Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor],
                 alphas_cumprod: torch.Tensor) -> Denoiser:
    """Wrap a discrete-time eps-prediction model (DDPM, Ho et al. 2020) as a VE denoiser (k-diffusion style)."""
    sigmas = ((1 - alphas_cumprod) / alphas_cumprod).sqrt()  # (T,) ascending
    log_sigmas = sigmas.log()

    def timestep(sigma: torch.Tensor) -> torch.Tensor:
        """Continuous timestep for sigma, interpolated in log sigma."""
        ls = sigma.log().clamp(log_sigmas[0], log_sigmas[-1])
        hi = torch.searchsorted(log_sigmas, ls).clamp(1, len(log_sigmas) - 1)
        lo = hi - 1
        w = (ls - log_sigmas[lo]) / (log_sigmas[hi] - log_sigmas[lo])
        return lo + w

    def denoise(x: torch.Tensor, sigma: torch.Tensor, cond: Any) -> torch.Tensor:
        s = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
        eps = eps_model(x / (s**2 + 1).sqrt(), timestep(sigma), cond)
        return x - s * eps

    return denoise


def _cat(a: Any, b: Any) -> Any:
    """Concatenate two conditionings along the batch dimension (tensors, dicts of tensors, or None)."""
    if a is None:
        return None
    if isinstance(a, torch.Tensor):
        return torch.cat([a, b])
    if isinstance(a, Mapping):
        return {k: _cat(a[k], b[k]) for k in a}
    raise TypeError(f"cannot batch a conditioning of type {type(a).__name__}")


def cfg_denoiser(denoiser: Denoiser, scale: float, *, sigma_floor: float = 0.0) -> Denoiser:
    """Classifier-free guidance (Ho & Salimans 2022): cond is (positive, negative); one batched call.

    Guidance applies only while sigma > sigma_floor (a guidance interval, Kynkaanniemi et al. 2024); below
    it the positive conditioning alone is evaluated, one pass instead of two.
    """

    def denoise(x: torch.Tensor, sigma: torch.Tensor, cond: Any) -> torch.Tensor:
        pos, neg = cond
        if scale == 1.0 or neg is None or float(sigma.max()) <= sigma_floor:
            return denoiser(x, sigma, pos)
        out = denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]), _cat(pos, neg))  # (2B, C, H, W)
        c, u = out.chunk(2)
        return u + scale * (c - u)

    return denoise


def keep_known(denoiser: Denoiser, known: torch.Tensor, mask: torch.Tensor) -> Denoiser:
    """Blended inpainting (Avrahami et al. 2023) as x0 replacement: outside the mask the prediction is `known`.

    known: (B, C, H, W) clean latent; mask: (B or 1, 1, H, W), 1 = regenerate.
    """

    def denoise(x: torch.Tensor, sigma: torch.Tensor, cond: Any) -> torch.Tensor:
        x0 = denoiser(x, sigma, cond)
        return mask * x0 + (1 - mask) * known

    return denoise
