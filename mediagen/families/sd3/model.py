"""SD3 / 3.5: StableDiffusion3{,Img2Img,Inpaint}Pipeline sharing one MMDiT, VAE and text encoders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from mediagen.families.diffusers_common import (
    DiffusersModel,
    FamilyInfo,
    Loaded,
    dtype_kw,
    folder_weight_files,
    load_pipeline,
    single_file_config,
    to_device,
)
from mediagen.safeload import check_diffusers_folder, refuse_unless_safetensors, safetensors_keys
from mediagen.schema import Mode

INFO = FamilyInfo(
    name="sd3",
    pipelines={Mode.T2I: "StableDiffusion3Pipeline", Mode.I2I: "StableDiffusion3Img2ImgPipeline",
               Mode.INPAINT: "StableDiffusion3InpaintPipeline"},
    flow=True, size_multiple=16, default_steps=28, default_guidance=7.0, default_size=1024,
    default_sampler="flow_euler",
    notes="rectified flow: sampler flow_euler only; (word:1.3) weight syntax is removed, not applied",
)


class SD3Model(DiffusersModel):
    """Stable Diffusion 3 / 3.5 (prompts go to diffusers' own CLIP-L, CLIP-G and T5 encoding)."""


# component -> key prefixes that show it is inside a single-file SD3 checkpoint
_BUNDLED = {
    "vae": ("first_stage_model.", "vae."),
    "text_encoder": ("text_encoders.clip_l.",),
    "text_encoder_2": ("text_encoders.clip_g.",),
    "text_encoder_3": ("text_encoders.t5xxl.",),
}


def missing_components(file: Path, config_folder: Path, dtype: torch.dtype) -> dict[str, Any]:
    """Components a single SD3 file does not carry (official files often hold only MMDiT + VAE), from the folder."""
    import diffusers
    import transformers

    keys = safetensors_keys(file)
    index = json.loads((config_folder / "model_index.json").read_text())
    out: dict[str, Any] = {}
    for name, prefixes in _BUNDLED.items():
        if any(k.startswith(prefixes) for k in keys) or not index.get(name) or index[name][0] is None:
            continue
        library, cls_name = index[name]
        cls = getattr(diffusers if library == "diffusers" else transformers, cls_name)
        new_tf = int(transformers.__version__.split(".")[0]) >= 5
        kw = dtype_kw(dtype) if library == "diffusers" else {("dtype" if new_tf else "torch_dtype"): dtype}
        out[name] = cls.from_pretrained(str(config_folder), subfolder=name, use_safetensors=True, **kw)
    return out


def default_config_repo(file: Path) -> str:
    """SD3.5 Large when the MMDiT has 38 blocks, else SD3.5 Medium (dual-attention) or SD3 Medium."""
    keys = [k.removeprefix("model.diffusion_model.") for k in safetensors_keys(file)]
    if any(k.startswith("joint_blocks.37.") for k in keys):
        return "stabilityai/stable-diffusion-3.5-large"
    if any(".x_block.attn2." in k for k in keys):
        return "stabilityai/stable-diffusion-3.5-medium"
    return "stabilityai/stable-diffusion-3-medium-diffusers"


def load_sd3(source: str, *, device: str, dtype: torch.dtype, config: str | None = None) -> SD3Model:
    """Load from a diffusers folder, a single .safetensors file (configured by `config`) or a hub id."""
    import diffusers

    p = Path(source).expanduser()
    if p.is_file():
        refuse_unless_safetensors(p)
        cfg = single_file_config(p, config, default_config_repo(p), needs_weights=True)
        check_diffusers_folder(cfg)
        extra = missing_components(p, cfg, dtype)
        pipe = diffusers.StableDiffusion3Pipeline.from_single_file(str(p), config=str(cfg), **dtype_kw(dtype),
                                                                   **extra)
        files = [p] + [f for f in folder_weight_files(cfg) if f.parent.name in extra]
        loaded = Loaded(pipe, files, "file")
    else:
        loaded = load_pipeline(diffusers.StableDiffusion3Pipeline, source, dtype=dtype, config=config,
                               default_repo="stabilityai/stable-diffusion-3.5-medium")
    pipe = to_device(loaded.pipe, device)
    modes = [Mode.T2I, Mode.I2I, Mode.INPAINT, Mode.OUTPAINT]
    return SD3Model(id=source, info=INFO, base=pipe, weight_files=loaded.weight_files, dtype=dtype, modes=modes)
