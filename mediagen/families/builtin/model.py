"""The built-in model as a LoadedModel: t2i, i2i, inpaint and outpaint with one latent UNet."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from mediagen.capabilities import Capabilities
from mediagen.engine.samplers import SAMPLERS, StepInfo
from mediagen.errors import ModelNotFoundError, RequestError, UnsupportedError
from mediagen.families.builtin.config import ModelConfig
from mediagen.families.builtin.nets import AutoEncoder, UNet
from mediagen.families.builtin.pipeline import inpaint_extra, latent_mask, sample
from mediagen.families.builtin.text import TextEncoder
from mediagen.model import Job, Output, Progress, ProgressFn
from mediagen.schema import Mode
from mediagen.settings import cpu_has_fast_bf16

MODES = (Mode.T2I, Mode.I2I, Mode.INPAINT, Mode.OUTPAINT)
WEIGHT_FILES = ("autoencoder.safetensors", "unet.safetensors")
SIZE_MULTIPLE, MIN_SIZE, MAX_SIZE = 32, 64, 256


def weights_dir() -> Path:
    """The weights shipped inside the package."""
    return Path(__file__).resolve().parent / "weights"


@dataclass
class BuiltinModel:
    """The model mediagen ships: a MiniLM-conditioned latent UNet trained on its own procedural world."""

    id: str
    config: ModelConfig
    ae: AutoEncoder
    unet: UNet
    text: TextEncoder
    files: list[Path]
    device: torch.device
    bf16: bool
    inpaint_method: str = "trained"  # or "blend": mask channels unused, known latent kept at every step
    _hash: str | None = field(default=None, repr=False)

    # -- LoadedModel -----------------------------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        """Modes, samplers and defaults."""
        c = self.config
        return Capabilities(
            model=self.id, family="builtin", modes=list(MODES), samplers=list(SAMPLERS), default_sampler="euler",
            default_steps=c.default_steps, default_guidance=c.default_guidance,
            default_guidance_end=c.default_guidance_end, default_width=c.default_size,
            default_height=c.default_size, size_multiple=SIZE_MULTIPLE, min_size=MIN_SIZE, max_size=MAX_SIZE,
            notes="trained on mediagen's procedural world (shapes, colours, sizes, materials, positions); "
                  "inpainting and outpainting are trained in",
        )

    def weights_hash(self) -> str:
        """sha256 of the weight files (first 10 hex digits), computed once."""
        if self._hash is None:
            h = hashlib.sha256()
            for p in self.files:
                h.update(p.read_bytes())
            self._hash = h.hexdigest()[:10]
        return self._hash

    def generate(self, job: Job, progress: ProgressFn) -> list[Output]:
        """Run one job; items are drawn one by one with seeds seed, seed + 1, ...

        Inpainting returns the whole generated image; callers composite it onto the original (the API does,
        in `mediagen.edits`). Outpainting and only-masked jobs given here directly go through that same step.
        """
        req = job.request
        if job.mode not in MODES:
            raise UnsupportedError(f"mode {job.mode.value!r} is not supported; {self.capabilities().summary()}")
        caps = self.capabilities()
        if job.mode == Mode.OUTPAINT or (job.mode == Mode.INPAINT and req.inpaint_only_masked):
            from mediagen.edits import plan_edit  # canvas / crop, then plain inpainting, then the composite

            work, finish = plan_edit(job, caps)
            return finish(self.generate(replace(work, request=req.model_copy(update={"inpaint_only_masked": False})),
                                        progress))
        steps = req.steps or caps.default_steps
        guidance = caps.default_guidance if req.guidance is None else req.guidance
        guidance_end = caps.default_guidance_end if req.guidance_end is None else req.guidance_end
        sampler = req.sampler or caps.default_sampler
        seed = req.seed if req.seed is not None else 0
        ctx, ctx_mask = self._encode_text(req.prompt, req.negative_prompt)
        plan = self._plan(job, caps, steps)
        outputs = []
        for item in range(req.n):
            z = sample(self.unet, ctx=ctx[:1], ctx_mask=ctx_mask[:1], neg_ctx=ctx[1:], neg_mask=ctx_mask[1:],
                       shape=plan.shape, seeds=[seed + item], steps=steps, guidance=guidance, sampler=sampler,
                       guidance_end=guidance_end, shift=self.config.default_shift, bf16=self.bf16,
                       extra=plan.extra, init=plan.init,
                       strength=plan.strength, known=plan.known, known_mask=plan.known_mask,
                       callback=self._callback(progress, item, req.n))
            outputs.append(Output(kind="image", image=plan.finish(self.decode(z)), seed=seed + item))
        return outputs

    # -- pieces ----------------------------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    @torch.inference_mode()
    def encode_image(self, image: Image.Image) -> torch.Tensor:
        """PIL RGB image -> scaled latent (1, C, H/4, W/4) float32."""
        x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)[None]
        x = (x / 127.5 - 1).to(self.device).contiguous(memory_format=torch.channels_last)
        with self._autocast():
            return self.ae.encode(x).float()

    @torch.inference_mode()
    def decode(self, z: torch.Tensor) -> Image.Image:
        """Scaled latent (1, C, h, w) -> PIL RGB image (4h x 4w)."""
        with self._autocast():
            x = self.ae.decode(z[:1].to(self.device).contiguous(memory_format=torch.channels_last)).float()
        arr = ((x[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        return Image.fromarray(arr)

    def _encode_text(self, prompt: str, negative: str) -> tuple[torch.Tensor, torch.Tensor]:
        """MiniLM token states of [prompt, negative] (weights applied, any length), padded together:
        (2, M, 384), (2, M)."""
        from mediagen.families.builtin.text import encode_prompts

        states, mask = encode_prompts(self.text, [prompt, negative], bf16=self.bf16)
        return states.to(self.device), mask.to(self.device)

    def _callback(self, progress: ProgressFn, item: int, items: int) -> Callable[[StepInfo], None]:
        def callback(info: StepInfo) -> None:
            den = info.denoised.detach()
            progress(Progress(item=item, items=items, step=info.step, steps=info.total,
                              preview=lambda: self.decode(den)))

        return callback

    def _plan(self, job: Job, caps: Capabilities, steps: int) -> "_Plan":
        """Latent shape, inpaint channels and init latent for t2i, i2i and inpaint.

        Edits run at a size the model takes (`mediagen.edits.working_size`) and come back at the input's size;
        the exact composite onto the original (and outpainting canvases, only-masked crops) is the core's
        `mediagen.edits.plan_edit`.
        """
        from mediagen.edits import working_size

        req = job.request
        c, f = self.config.ae.latent_channels, self.config.ae.factor
        if job.mode == Mode.T2I:
            w, h = req.width or caps.default_width, req.height or caps.default_height
            _check_size(w, h)
            return _Plan((c, h // f, w // f))
        if job.image is None:
            raise RequestError(f"{job.mode.value} needs --image")
        image = job.image.convert("RGB")
        size = working_size(image.size, caps)
        back = (lambda im: im) if size == image.size else (lambda im: im.resize(image.size, Image.Resampling.LANCZOS))
        z = self.encode_image(image.resize(size, Image.Resampling.LANCZOS) if size != image.size else image)
        if job.mode == Mode.I2I:
            strength = caps.default_strength if req.strength is None else req.strength
            if int(round(steps * strength)) < 1:
                raise RequestError(f"strength {strength} with {steps} steps runs no denoising step: raise "
                                   "--strength or --steps (steps x strength must be at least 1)")
            return _Plan(tuple(z.shape[1:]), init=z, strength=strength, finish=back)
        if job.mask is None:
            raise RequestError("inpainting needs --mask (white = regenerate)")
        mask = np.asarray(job.mask, dtype=np.float32)
        if mask.shape != (image.height, image.width):
            raise RequestError(f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image is {image.width}x"
                               f"{image.height}: give a mask of the image's size")
        m = torch.from_numpy(np.array(Image.fromarray(mask).resize(size, Image.Resampling.BILINEAR)))[None, None]
        lm = latent_mask((m > 0.5 / 255).float(), f).to(self.device)  # (1, 1, h, w), 1 = regenerate
        if self.inpaint_method == "blend":  # training-free: text-to-image inputs, known cells replaced each step
            return _Plan(tuple(z.shape[1:]), known=z, known_mask=lm, finish=back)
        return _Plan(tuple(z.shape[1:]), extra=inpaint_extra(z, lm, tuple(z.shape)), finish=back)


@dataclass
class _Plan:
    """What one mode needs from the sampler and after it."""

    shape: tuple[int, ...]
    extra: torch.Tensor | None = None
    init: torch.Tensor | None = None
    strength: float | None = None
    known: torch.Tensor | None = None
    known_mask: torch.Tensor | None = None
    finish: Callable[[Image.Image], Image.Image] = lambda im: im


def _check_size(w: int, h: int) -> None:
    for name, v in (("width", w), ("height", h)):
        if v % SIZE_MULTIPLE or not MIN_SIZE <= v <= MAX_SIZE:
            raise UnsupportedError(f"{name} {v} must be a multiple of {SIZE_MULTIPLE} between {MIN_SIZE} and "
                                   f"{MAX_SIZE} for the built-in model")


def load_folder(folder: Path, *, model_id: str, device: str = "cpu", dtype: Any = None) -> BuiltinModel:
    """Build the model from a folder holding config.json, autoencoder.safetensors and unet.safetensors."""
    from safetensors.torch import load_file

    missing = [n for n in ("config.json", *WEIGHT_FILES) if not (folder / n).is_file()]
    if missing:
        raise ModelNotFoundError(
            f"the built-in model folder {folder} lacks {', '.join(missing)}: reinstall mediagen, or export "
            "trained weights with `python -m mediagen.families.builtin.export`"
        )
    cfg = ModelConfig.from_dict(json.loads((folder / "config.json").read_text()))
    dev = torch.device(device)
    ae, unet = AutoEncoder(cfg.ae), UNet(cfg.unet)
    for module, name in ((ae, WEIGHT_FILES[0]), (unet, WEIGHT_FILES[1])):
        sd = {k: v.float() for k, v in load_file(str(folder / name)).items()}
        module.load_state_dict(sd)
        module.eval().requires_grad_(False).to(dev, memory_format=torch.channels_last)
    text = TextEncoder(max_tokens=cfg.text_max_tokens, layers=cfg.text_layers)
    if text.dim != cfg.unet.context_dim:
        raise ModelNotFoundError(f"{folder / 'config.json'}: text layers {list(cfg.text_layers)} give {text.dim}-d "
                                 f"states but the UNet reads {cfg.unet.context_dim}-d; re-export the weights")
    text.model.to(dev)
    if dtype is None:
        bf16 = cpu_has_fast_bf16() if dev.type == "cpu" else True
    else:
        bf16 = dtype == torch.bfloat16
    return BuiltinModel(id=model_id, config=cfg, ae=ae, unet=unet, text=text,
                        files=[folder / n for n in WEIGHT_FILES], device=dev, bf16=bf16)
