"""SDXL: StableDiffusionXL{,Img2Img,Inpaint}Pipeline sharing one UNet, VAE and two CLIP text encoders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mediagen.families.diffusers_common import (
    DiffusersModel,
    FamilyInfo,
    load_pipeline,
    to_device,
    weighted_clip_embeds,
)
from mediagen.safeload import read_safetensors_header
from mediagen.schema import Mode

INFO = FamilyInfo(
    name="sdxl",
    pipelines={Mode.T2I: "StableDiffusionXLPipeline", Mode.I2I: "StableDiffusionXLImg2ImgPipeline",
               Mode.INPAINT: "StableDiffusionXLInpaintPipeline"},
    flow=False, size_multiple=8, default_steps=30, default_guidance=6.0, default_size=1024,
    default_sampler="dpmpp_2m_karras",
    notes="(word:1.3) weights words; prompts longer than 77 tokens are encoded in 75-token windows",
    cfg_batched=("prompt_embeds", "add_text_embeds", "add_time_ids", "mask", "masked_image_latents"),
)


class SDXLModel(DiffusersModel):
    """SDXL with weighted, unbounded-length prompts through both text encoders."""

    def encode_prompt(self, pipe: Any, prompt: str, negative: str, guidance: float) -> dict[str, Any]:
        """Penultimate-layer embeddings of both encoders, concatenated; pooled from the second encoder."""
        pairs = [(t, e) for t, e in ((pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2))
                 if t is not None and e is not None]
        (pos, pooled), (neg, npooled) = weighted_clip_embeds([t for t, _ in pairs], [e for _, e in pairs],
                                                             [prompt, negative], penultimate=True)
        if not negative.strip() and getattr(pipe.config, "force_zeros_for_empty_prompt", False):
            neg, npooled = torch.zeros_like(pos), torch.zeros_like(pooled)
        d = self.dtype
        return {"prompt_embeds": pos.to(d), "negative_prompt_embeds": neg.to(d),
                "pooled_prompt_embeds": pooled.to(d), "negative_pooled_prompt_embeds": npooled.to(d)}


def default_config_repo(file: Path) -> str:
    """The hub repo whose configs fit a single-file SDXL checkpoint (from its header only)."""
    header = read_safetensors_header(file)
    first = header.get("model.diffusion_model.input_blocks.0.0.weight", {}).get("shape", [0, 4])
    if len(first) > 1 and first[1] == 9:
        return "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
    return "stabilityai/stable-diffusion-xl-base-1.0"


def load_sdxl(source: str, *, device: str, dtype: torch.dtype, config: str | None = None) -> SDXLModel:
    """Load from a diffusers folder, a single .safetensors file (configured by `config`) or a hub id."""
    import diffusers

    p = Path(source).expanduser()
    repo = default_config_repo(p) if p.is_file() else "stabilityai/stable-diffusion-xl-base-1.0"
    loaded = load_pipeline(diffusers.StableDiffusionXLPipeline, source, dtype=dtype, config=config, default_repo=repo)
    pipe = to_device(loaded.pipe, device)
    inpaint_unet = pipe.unet.config.in_channels == 9
    modes = [Mode.INPAINT, Mode.OUTPAINT] if inpaint_unet else [Mode.T2I, Mode.I2I, Mode.INPAINT, Mode.OUTPAINT]
    return SDXLModel(id=source, info=INFO, base=pipe, weight_files=loaded.weight_files, dtype=dtype, modes=modes)
