"""The width-generic FLUX converter agrees with diffusers' own one at FLUX.1's real width."""

from __future__ import annotations

import pytest
import torch

from mediagen.errors import UnsupportedError
from mediagen.families.flux.convert import flux_module_map, flux_original_to_diffusers

pytestmark = pytest.mark.usefixtures("one_thread")

REAL = {"num_attention_heads": 24, "attention_head_dim": 128, "num_layers": 2, "num_single_layers": 2,
        "guidance_embeds": True}


def fake_original(config: dict) -> dict:
    """An original-layout state dict with the real row counts and a width-1 second axis (cheap to build)."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for orig, pieces in flux_module_map(config).items():
        rows = sum((p.stop - p.start) if p.stop is not None else 6 for p in pieces)
        norm = orig.endswith(("query_norm", "key_norm"))
        out[f"{orig}.scale" if norm else f"{orig}.weight"] = torch.randn(rows, 1, generator=g)
        if not norm:
            out[f"{orig}.bias"] = torch.randn(rows, generator=g)
    return out


def test_matches_diffusers_converter_at_real_width():
    from diffusers.loaders.single_file_utils import convert_flux_transformer_checkpoint_to_diffusers

    original = fake_original(REAL)
    ours = flux_original_to_diffusers(dict(original), REAL)
    prefixed = {"model.diffusion_model." + k: v for k, v in original.items()}
    theirs = convert_flux_transformer_checkpoint_to_diffusers(prefixed)
    assert ours.keys() == theirs.keys()
    for k in ours:
        assert torch.equal(ours[k], theirs[k]), k


def test_unknown_tensors_are_refused():
    original = fake_original(REAL)
    original["img_in_extra.weight"] = torch.zeros(1)
    with pytest.raises(UnsupportedError, match="img_in_extra"):
        flux_original_to_diffusers(original, REAL)
