"""FLUX.1 (double/single-stream DiT, rectified flow) through diffusers' own pipelines."""

from __future__ import annotations

from typing import Any

CATALOG = {
    "black-forest-labs/FLUX.1-dev": "FLUX.1 [dev] (guidance-distilled, ~28 steps)",
    "black-forest-labs/FLUX.1-schnell": "FLUX.1 [schnell] (timestep-distilled, 1-4 steps)",
    "black-forest-labs/FLUX.1-Krea-dev": "FLUX.1 Krea [dev]",
}


def load(source: str, *, device: str, dtype: Any, config: str | None = None):
    """Load a FLUX.1 model from a diffusers folder, a .safetensors checkpoint or a hub id.

    A single file takes configs (and, where it lacks them, encoder/VAE weights) from `config`, a diffusers
    folder; else from `NAME.config/` beside `NAME.safetensors`; else from the hub cache or the hub.
    """
    from mediagen.families.flux.model import load_flux

    return load_flux(source, device=device, dtype=dtype, config=config)
