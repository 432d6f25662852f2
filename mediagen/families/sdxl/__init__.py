"""Stable Diffusion XL (UNet + two CLIP text encoders) through diffusers' own pipelines."""

from __future__ import annotations

from typing import Any

CATALOG = {
    "stabilityai/stable-diffusion-xl-base-1.0": "SDXL 1.0 base",
    "diffusers/stable-diffusion-xl-1.0-inpainting-0.1": "SDXL 1.0 inpainting",
    "stabilityai/sdxl-turbo": "SDXL Turbo (1-4 steps, guidance 0)",
    "playgroundai/playground-v2.5-1024px-aesthetic": "Playground v2.5",
    "RunDiffusion/Juggernaut-XL-v9": "Juggernaut XL v9 (SDXL fine-tune)",
}


def load(source: str, *, device: str, dtype: Any, config: str | None = None):
    """Load an SDXL model from a diffusers folder, a .safetensors checkpoint or a hub id.

    A single file takes configs (and, where it lacks them, encoder/VAE weights) from `config`, a diffusers
    folder; else from `NAME.config/` beside `NAME.safetensors`; else from the hub cache or the hub.
    """
    from mediagen.families.sdxl.model import load_sdxl

    return load_sdxl(source, device=device, dtype=dtype, config=config)
