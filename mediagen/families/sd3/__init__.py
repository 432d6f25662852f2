"""Stable Diffusion 3 / 3.5 (MMDiT, rectified flow) through diffusers' own pipelines."""

from __future__ import annotations

from typing import Any

CATALOG = {
    "stabilityai/stable-diffusion-3-medium-diffusers": "SD3 Medium",
    "stabilityai/stable-diffusion-3.5-medium": "SD3.5 Medium",
    "stabilityai/stable-diffusion-3.5-large": "SD3.5 Large",
    "stabilityai/stable-diffusion-3.5-large-turbo": "SD3.5 Large Turbo (4 steps)",
}


def load(source: str, *, device: str, dtype: Any, config: str | None = None):
    """Load an SD3 model from a diffusers folder, a .safetensors checkpoint or a hub id.

    A single file takes configs (and, where it lacks them, encoder/VAE weights) from `config`, a diffusers
    folder; else from `NAME.config/` beside `NAME.safetensors`; else from the hub cache or the hub.
    """
    from mediagen.families.sd3.model import load_sd3

    return load_sd3(source, device=device, dtype=dtype, config=config)
