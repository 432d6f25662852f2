"""SD 1.x/2.x: StableDiffusion{,Img2Img,Inpaint}Pipeline sharing one UNet, VAE and CLIP text encoder."""

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
    name="sd15",
    pipelines={Mode.T2I: "StableDiffusionPipeline", Mode.I2I: "StableDiffusionImg2ImgPipeline",
               Mode.INPAINT: "StableDiffusionInpaintPipeline"},
    flow=False, size_multiple=8, default_steps=25, default_guidance=7.0, default_size=512,
    default_sampler="dpmpp_2m_karras",
    notes="(word:1.3) weights words; prompts longer than 77 tokens are encoded in 75-token windows",
    cfg_batched=("prompt_embeds", "mask", "masked_image_latents"),
)


class SD15Model(DiffusersModel):
    """Stable Diffusion 1.x/2.x with weighted, unbounded-length prompts."""

    def encode_prompt(self, pipe: Any, prompt: str, negative: str, guidance: float) -> dict[str, Any]:
        """CLIP last-layer embeddings of weighted prompt windows (A1111 emphasis)."""
        (pos, _), (neg, _) = weighted_clip_embeds([pipe.tokenizer], [pipe.text_encoder], [prompt, negative],
                                                  penultimate=False)
        return {"prompt_embeds": pos.to(self.dtype), "negative_prompt_embeds": neg.to(self.dtype)}


def default_config_repo(file: Path) -> str:
    """The hub repo whose configs fit a single-file SD 1.x/2.x checkpoint (from its header only)."""
    header = read_safetensors_header(file)
    first = header.get("model.diffusion_model.input_blocks.0.0.weight", {}).get("shape", [0, 4])
    if len(first) > 1 and first[1] == 9:
        return "stable-diffusion-v1-5/stable-diffusion-inpainting"
    if "cond_stage_model.model.token_embedding.weight" in header:
        return "stabilityai/stable-diffusion-2-1"
    return "stable-diffusion-v1-5/stable-diffusion-v1-5"


def load_sd15(source: str, *, device: str, dtype: torch.dtype, config: str | None = None) -> SD15Model:
    """Load from a diffusers folder, a single .safetensors file (configured by `config`) or a hub id."""
    import diffusers

    p = Path(source).expanduser()
    repo = default_config_repo(p) if p.is_file() else "stable-diffusion-v1-5/stable-diffusion-v1-5"
    loaded = load_pipeline(diffusers.StableDiffusionPipeline, source, dtype=dtype, config=config, default_repo=repo,
                           safety_checker=None, requires_safety_checker=False)
    pipe = to_device(loaded.pipe, device)
    inpaint_unet = pipe.unet.config.in_channels == 9
    modes = [Mode.INPAINT, Mode.OUTPAINT] if inpaint_unet else [Mode.T2I, Mode.I2I, Mode.INPAINT, Mode.OUTPAINT]
    return SD15Model(id=source, info=INFO, base=pipe, weight_files=loaded.weight_files, dtype=dtype, modes=modes)
