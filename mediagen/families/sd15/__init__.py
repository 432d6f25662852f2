"""Stable Diffusion 1.x/2.x (UNet + CLIP text encoder) through diffusers' own pipelines."""

from __future__ import annotations

from typing import Any

CATALOG = {
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "Stable Diffusion 1.5",
    "stable-diffusion-v1-5/stable-diffusion-inpainting": "Stable Diffusion 1.5 inpainting (9-channel UNet)",
    "runwayml/stable-diffusion-v1-5": "Stable Diffusion 1.5 (original location)",
    "CompVis/stable-diffusion-v1-4": "Stable Diffusion 1.4",
    "stabilityai/stable-diffusion-2-1": "Stable Diffusion 2.1 (768, v-prediction)",
    "stabilityai/stable-diffusion-2-1-base": "Stable Diffusion 2.1 base (512)",
    "Lykon/dreamshaper-8": "DreamShaper 8 (SD 1.5 fine-tune)",
}


def load(source: str, *, device: str, dtype: Any, config: str | None = None):
    """Load an SD 1.x/2.x model from a diffusers folder, a .safetensors checkpoint or a hub id.

    A single file takes configs (and, where it lacks them, encoder/VAE weights) from `config`, a diffusers
    folder; else from `NAME.config/` beside `NAME.safetensors`; else from the hub cache or the hub.
    """
    from mediagen.families.sd15.model import load_sd15

    return load_sd15(source, device=device, dtype=dtype, config=config)
