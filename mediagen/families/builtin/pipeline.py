"""Sampling glue shared by the family and the training previews: velocity function, inpaint inputs, engine call."""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from mediagen.engine.denoisers import cfg_denoiser, flow_denoiser
from mediagen.engine.loop import denoise, run_sigmas
from mediagen.engine.samplers import Callback
from mediagen.engine.schedules import flow_sigmas, guidance_floor
from mediagen.families.builtin.nets import UNet


def make_velocity(unet: UNet, *, bf16: bool):
    """v(x_t, t, cond) for the engine; cond = {"ctx": (B, M, D), "pooled": (B, D), "ctx_mask": (B, M),
    "extra": (B, C+1, h, w)}, the text part prepared once by `text_cond`."""

    def velocity(x_t: torch.Tensor, t: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        inp = torch.cat([x_t, cond["extra"].to(x_t.dtype)], dim=1) if unet.cfg.inpaint else x_t  # (B, 2C+1, h, w)
        inp = inp.contiguous(memory_format=torch.channels_last)
        with torch.autocast(x_t.device.type, dtype=torch.bfloat16, enabled=bf16):
            v = unet.body(inp, t.expand(x_t.shape[0]), cond["ctx"], cond["pooled"], cond["ctx_mask"])
        return v.float()

    return velocity


def text_cond(unet: UNet, ctx: torch.Tensor, ctx_mask: torch.Tensor, *, bf16: bool) -> dict[str, torch.Tensor]:
    """The text part of the velocity's cond from text states (B, M, D) and mask (B, M): computed once per prompt."""
    with torch.no_grad(), torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=bf16):
        tokens, pooled = unet.context(ctx, ctx_mask)
    return {"ctx": tokens.float(), "pooled": pooled.float(), "ctx_mask": ctx_mask}


def inpaint_extra(latent: torch.Tensor | None, mask: torch.Tensor | None, shape: tuple[int, ...],
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """The inpaint channels (B, 1 + C, h, w): latent mask (1 = regenerate) and the latent zeroed inside it.

    With no latent (text-to-image, image-to-image) the mask is all ones and the masked latent all zeros.
    shape: (B, C, h, w) of the sampled latent.
    """
    b, c, h, w = shape
    if latent is None:
        return torch.cat([torch.ones(b, 1, h, w, device=device), torch.zeros(b, c, h, w, device=device)], dim=1)
    m = mask.expand(b, 1, h, w).float()
    return torch.cat([m, latent.expand(b, c, h, w) * (1 - m)], dim=1)


def latent_mask(mask: torch.Tensor, factor: int) -> torch.Tensor:
    """Pixel mask (B, 1, H, W) in [0, 1] -> latent mask (B, 1, H/f, W/f): a cell is regenerated if any pixel is."""
    return (F.max_pool2d(mask.float(), factor) > 0.5).float()


def sample(unet: UNet, *, ctx: torch.Tensor, ctx_mask: torch.Tensor, neg_ctx: torch.Tensor | None,
           neg_mask: torch.Tensor | None, shape: tuple[int, ...], seeds: Sequence[int], steps: int,
           guidance: float, sampler: str, shift: float, bf16: bool, guidance_end: float = 1.0,
           extra: torch.Tensor | None = None,
           init: torch.Tensor | None = None, strength: float | None = None, known: torch.Tensor | None = None,
           known_mask: torch.Tensor | None = None, callback: Callback | None = None) -> torch.Tensor:
    """Draw len(seeds) latents of shape (C, h, w) with the shared engine; ctx (1 or B, M, 384) per prompt.

    known/known_mask (1, C, h, w)/(1, 1, h, w): blended inpainting, the known latent kept where the mask is 0.
    guidance_end: the share of the steps that run (all but those img2img skips), from the first, that use guidance.
    """
    b, device = len(seeds), ctx.device
    extra = inpaint_extra(None, None, (b, *shape), device) if extra is None else extra
    pos: dict[str, Any] = {**text_cond(unet, ctx.expand(b, -1, -1), ctx_mask.expand(b, -1), bf16=bf16), "extra": extra}
    neg = None
    if neg_ctx is not None and guidance != 1.0:
        neg = {**text_cond(unet, neg_ctx.expand(b, -1, -1), neg_mask.expand(b, -1), bf16=bf16), "extra": extra}
    sigmas = flow_sigmas(steps, shift)
    den = cfg_denoiser(flow_denoiser(make_velocity(unet, bf16=bf16)), guidance,
                       sigma_floor=guidance_floor(run_sigmas(sigmas, init, strength), guidance_end))
    return denoise(den, shape=shape, seeds=seeds, sigmas=sigmas, sampler=sampler,
                   cond=(pos, neg), init=init, strength=strength, known=known, known_mask=known_mask,
                   callback=callback, device=device)
