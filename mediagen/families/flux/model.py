"""FLUX.1: Flux{,Img2Img,Inpaint}Pipeline sharing one transformer, VAE, CLIP-L and T5 encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mediagen.errors import ModelNotFoundError
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
from mediagen.families.flux.convert import flux_original_to_diffusers
from mediagen.safeload import check_diffusers_folder, load_safetensors, refuse_unless_safetensors, safetensors_keys
from mediagen.schema import Mode

_PIPES = {Mode.T2I: "FluxPipeline", Mode.I2I: "FluxImg2ImgPipeline", Mode.INPAINT: "FluxInpaintPipeline"}
_NOTES = ("rectified flow: sampler flow_euler only; guidance is FLUX's distilled guidance (no negative prompt); "
          "(word:1.3) weight syntax is removed, not applied")

DEV = FamilyInfo(name="flux", pipelines=_PIPES, flow=True, size_multiple=16, default_steps=28, default_guidance=3.5,
                 default_size=1024, default_sampler="flow_euler", negative_prompt=False, notes=_NOTES)
SCHNELL = FamilyInfo(name="flux", pipelines=_PIPES, flow=True, size_multiple=16, default_steps=4,
                     default_guidance=0.0, default_size=1024, default_sampler="flow_euler", negative_prompt=False,
                     notes=_NOTES + "; timestep-distilled: 1-4 steps, guidance unused")


class FluxModel(DiffusersModel):
    """FLUX.1 [dev] / [schnell]."""

    def encode_prompt(self, pipe: Any, prompt: str, negative: str, guidance: float) -> dict[str, Any]:
        """The plain prompt for both encoders; T5 sees up to 512 tokens ([dev]) or 256 ([schnell])."""
        from mediagen.prompts import plain_text

        long = pipe.transformer.config.guidance_embeds
        return {"prompt": plain_text(prompt), "max_sequence_length": 512 if long else 256}

    def latents_to_image(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> Any:
        """Unpack (1, h*w/4, 4C) packed latents to (1, C, h, w), then decode."""
        if latents.ndim == 3:
            latents = pipe._unpack_latents(latents[:1], height, width, pipe.vae_scale_factor)
        return super().latents_to_image(pipe, latents, width, height)

    def lora_targets(self) -> dict[str, torch.nn.Module]:
        """LoRAs may patch the transformer and the CLIP text encoder."""
        return {"transformer": self.base.transformer, "text_encoder": self.base.text_encoder}


def default_config_repo(keys: list[str]) -> str:
    """[dev] when the checkpoint carries a guidance embedder, else [schnell]."""
    if any(k.removeprefix("model.diffusion_model.").startswith("guidance_in.") for k in keys):
        return "black-forest-labs/FLUX.1-dev"
    return "black-forest-labs/FLUX.1-schnell"


def load_transformer_file(file: Path, cfg_folder: Path, dtype: torch.dtype) -> Any:
    """A FluxTransformer2DModel from an original-layout single file, shaped by the config folder's transformer."""
    import diffusers
    from accelerate import init_empty_weights

    cls = diffusers.FluxTransformer2DModel
    tcfg = cls.load_config(str(cfg_folder), subfolder="transformer")
    state = flux_original_to_diffusers(load_safetensors(file), tcfg)
    with init_empty_weights():
        expected = set(cls.from_config(tcfg).state_dict())
    missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or extra:
        raise ModelNotFoundError(
            f"{file} does not fit the transformer config in {cfg_folder} (missing {missing[:3]}, unexpected "
            f"{extra[:3]}): use a config folder of the same FLUX variant"
        )
    return cls.from_single_file(state, config=str(cfg_folder), subfolder="transformer", **dtype_kw(dtype))


def load_flux(source: str, *, device: str, dtype: torch.dtype, config: str | None = None) -> FluxModel:
    """Load from a diffusers folder, a single .safetensors transformer file (plus a config folder) or a hub id."""
    import diffusers

    p = Path(source).expanduser()
    if p.is_file():
        refuse_unless_safetensors(p)
        cfg = single_file_config(p, config, default_config_repo(safetensors_keys(p)), needs_weights=True)
        check_diffusers_folder(cfg)
        transformer = load_transformer_file(p, cfg, dtype)
        pipe = diffusers.FluxPipeline.from_pretrained(str(cfg), transformer=transformer, **dtype_kw(dtype),
                                                      use_safetensors=True)
        others = [f for f in folder_weight_files(cfg) if f.parent.name != "transformer"]
        loaded = Loaded(pipe, [p, *others], "file")
    else:
        loaded = load_pipeline(diffusers.FluxPipeline, source, dtype=dtype, config=config,
                               default_repo="black-forest-labs/FLUX.1-dev")
    pipe = to_device(loaded.pipe, device)
    info = DEV if pipe.transformer.config.guidance_embeds else SCHNELL
    modes = [Mode.T2I, Mode.I2I, Mode.INPAINT, Mode.OUTPAINT]
    return FluxModel(id=source, info=info, base=pipe, weight_files=loaded.weight_files, dtype=dtype, modes=modes)

