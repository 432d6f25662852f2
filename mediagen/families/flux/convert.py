"""FLUX.1 original (BFL) parameter layout -> diffusers FluxTransformer2DModel, for any model width."""

from __future__ import annotations

from typing import NamedTuple

import torch

from mediagen.errors import UnsupportedError

SWAP = "swap"  # shift/scale halves in the original, scale/shift in diffusers (AdaLayerNormContinuous)


class Piece(NamedTuple):
    """Rows [start, stop) of an original module's output become diffusers module `name` (optionally swapped)."""

    name: str
    start: int
    stop: int | None
    transform: str | None = None


def flux_module_map(config: dict) -> dict[str, list[Piece]]:
    """Original module name -> diffusers pieces, from a FluxTransformer2DModel config."""
    inner = config["num_attention_heads"] * config["attention_head_dim"]
    mlp = int(inner * config.get("mlp_ratio", 4.0))
    one = lambda name: [Piece(name, 0, None)]
    m: dict[str, list[Piece]] = {
        "time_in.in_layer": one("time_text_embed.timestep_embedder.linear_1"),
        "time_in.out_layer": one("time_text_embed.timestep_embedder.linear_2"),
        "vector_in.in_layer": one("time_text_embed.text_embedder.linear_1"),
        "vector_in.out_layer": one("time_text_embed.text_embedder.linear_2"),
        "txt_in": one("context_embedder"),
        "img_in": one("x_embedder"),
        "final_layer.linear": one("proj_out"),
        "final_layer.adaLN_modulation.1": [Piece("norm_out.linear", 0, None, SWAP)],
    }
    if config.get("guidance_embeds"):
        m["guidance_in.in_layer"] = one("time_text_embed.guidance_embedder.linear_1")
        m["guidance_in.out_layer"] = one("time_text_embed.guidance_embedder.linear_2")
    qkv = lambda q, k, v: [Piece(q, 0, inner), Piece(k, inner, 2 * inner), Piece(v, 2 * inner, 3 * inner)]
    for i in range(config["num_layers"]):
        o, d = f"double_blocks.{i}.", f"transformer_blocks.{i}."
        m.update({
            o + "img_mod.lin": one(d + "norm1.linear"),
            o + "txt_mod.lin": one(d + "norm1_context.linear"),
            o + "img_attn.qkv": qkv(d + "attn.to_q", d + "attn.to_k", d + "attn.to_v"),
            o + "txt_attn.qkv": qkv(d + "attn.add_q_proj", d + "attn.add_k_proj", d + "attn.add_v_proj"),
            o + "img_attn.norm.query_norm": one(d + "attn.norm_q"),
            o + "img_attn.norm.key_norm": one(d + "attn.norm_k"),
            o + "txt_attn.norm.query_norm": one(d + "attn.norm_added_q"),
            o + "txt_attn.norm.key_norm": one(d + "attn.norm_added_k"),
            o + "img_mlp.0": one(d + "ff.net.0.proj"),
            o + "img_mlp.2": one(d + "ff.net.2"),
            o + "txt_mlp.0": one(d + "ff_context.net.0.proj"),
            o + "txt_mlp.2": one(d + "ff_context.net.2"),
            o + "img_attn.proj": one(d + "attn.to_out.0"),
            o + "txt_attn.proj": one(d + "attn.to_add_out"),
        })
    for i in range(config["num_single_layers"]):
        o, d = f"single_blocks.{i}.", f"single_transformer_blocks.{i}."
        m.update({
            o + "modulation.lin": one(d + "norm.linear"),
            o + "linear1": qkv(d + "attn.to_q", d + "attn.to_k", d + "attn.to_v")
            + [Piece(d + "proj_mlp", 3 * inner, 3 * inner + mlp)],
            o + "norm.query_norm": one(d + "attn.norm_q"),
            o + "norm.key_norm": one(d + "attn.norm_k"),
            o + "linear2": one(d + "proj_out"),
        })
    return m


def swap_halves(t: torch.Tensor) -> torch.Tensor:
    """(shift, scale) rows -> (scale, shift) rows, and back."""
    a, b = t.chunk(2, dim=0)
    return torch.cat([b, a], dim=0)


def transformer_keys(state: dict) -> dict:
    """The transformer's tensors of a FLUX checkpoint, without 'model.diffusion_model.' and bundled VAE/encoders."""
    out = {}
    for k, v in state.items():
        k = k.removeprefix("model.diffusion_model.")
        if k.startswith(("vae.", "text_encoders.", "first_stage_model.", "conditioner.", "cond_stage_model.")):
            continue
        out[k] = v
    return out


def flux_original_to_diffusers(state: dict, config: dict) -> dict:
    """Convert an original-layout FLUX transformer state dict; leftover or missing tensors raise."""
    mapping = flux_module_map(config)
    src = transformer_keys(state)
    out: dict = {}
    used: set[str] = set()
    for orig, pieces in mapping.items():
        for param, new_param in (("weight", "weight"), ("bias", "bias"), ("scale", "weight")):
            key = f"{orig}.{param}"
            if key not in src:
                continue
            t = src[key]
            used.add(key)
            for p in pieces:
                part = t[p.start:p.stop]
                out[f"{p.name}.{new_param}"] = swap_halves(part) if p.transform == SWAP else part
    left = sorted(set(src) - used)
    if left:
        raise UnsupportedError(
            f"the FLUX checkpoint has {len(left)} tensors this layout does not know (e.g. {', '.join(left[:4])}); "
            "it may be a FLUX variant (Fill, Depth, Redux) or a different width than the config folder's"
        )
    return out
