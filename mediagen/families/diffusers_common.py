"""Shared pieces of the diffusers-backed families: samplers, safe loading, weighted long prompts, generation.

Single-file checkpoints (`model.safetensors` in the original layout) carry weights but no configs or
tokenizers; diffusers takes those from a diffusers folder of the same base model. Where that folder comes from,
first match wins:
  1. `config=FOLDER` passed to the family's `load` (any local diffusers folder of the same family);
  2. a sidecar folder `model.config/` next to `model.safetensors` (copy or symlink a base model's folder there);
  3. the base model's hub repo (e.g. stable-diffusion-v1-5/stable-diffusion-v1-5): the local hub cache if it
     holds it, else a download of its small config files when the hub is reachable.
SD 1.x/2.x and SDXL files need only configs and tokenizers from that folder. FLUX and SD3 files that carry only
the transformer also need the folder's text encoders and VAE weights. Offline with none of the three, loading
stops with an error naming the missing repo and both local fixes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mediagen.capabilities import Capabilities
from mediagen.errors import ModelNotFoundError, RequestError, UnsupportedError
from mediagen.model import Job, Output, Progress, ProgressFn
from mediagen.prompts import parse_weighted, plain_text
from mediagen.safeload import check_diffusers_folder, refuse_unless_safetensors
from mediagen.schema import Mode

# ---------------------------------------------------------------------------------------------------------------
# samplers

# our name -> (diffusers scheduler class, config overrides); built with `from_config` on the model's own config.
SAMPLERS: dict[str, tuple[str, dict]] = {
    "euler": ("EulerDiscreteScheduler", {"use_karras_sigmas": False}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                 "use_karras_sigmas": False}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                        "use_karras_sigmas": True}),
    "ddim": ("DDIMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {"use_karras_sigmas": False}),
}
FLOW_SAMPLERS: dict[str, tuple[str, dict]] = {
    "flow_euler": ("FlowMatchEulerDiscreteScheduler", {}),
}


def make_scheduler(base_config: Any, name: str, *, flow: bool) -> Any:
    """A fresh diffusers scheduler for sampler `name`, configured from the model's own scheduler config."""
    import diffusers

    table = FLOW_SAMPLERS if flow else SAMPLERS
    if name not in table:
        raise UnsupportedError(f"sampler {name!r} is not available for this model; samplers: {', '.join(table)}")
    cls_name, overrides = table[name]
    return getattr(diffusers, cls_name).from_config(base_config, **overrides)


# ---------------------------------------------------------------------------------------------------------------
# loading


def dtype_kw(dtype: torch.dtype) -> dict[str, torch.dtype]:
    """The dtype keyword diffusers' loaders take: `dtype` in recent releases, `torch_dtype` before."""
    import importlib.util

    recent = importlib.util.find_spec("diffusers.utils.deprecation_utils") is not None
    if recent:
        from diffusers.utils import deprecation_utils

        recent = hasattr(deprecation_utils, "_resolve_dtype")
    return {"dtype": dtype} if recent else {"torch_dtype": dtype}


@dataclass
class Loaded:
    """A loaded base pipeline and the weight files its components came from."""

    pipe: Any
    weight_files: list[Path]
    source_kind: str  # "folder" | "file" | "hub"


def folder_weight_files(folder: Path) -> list[Path]:
    """The safetensors weight files of a diffusers folder's components."""
    return sorted(p for p in folder.glob("*/*.safetensors") if p.is_file())


CONFIG_PATTERNS = ["*.json", "*.txt", "*.model", "**/*.json", "**/*.txt", "**/*.model"]
# what a transformer-only single file (FLUX, SD3) still needs: configs, tokenizers, text encoders and the VAE
ENCODER_PATTERNS = [*CONFIG_PATTERNS, "text_encoder*/*.safetensors", "vae/*.safetensors"]


def _fetch(what: str, fetch: Callable[[bool], str]) -> Path:
    """`fetch(local_only)` from the cache, else from the hub when reachable; offline -> a clear error."""
    from mediagen.families.detect import hub_problem, hub_unreachable

    try:
        return Path(fetch(True))
    except Exception:  # noqa: BLE001, S110 - not (fully) cached: fall through to the hub
        pass
    problem = hub_problem()
    if problem:
        raise hub_unreachable(what, problem)
    try:
        return Path(fetch(False))
    except Exception as e:  # noqa: BLE001 - network, auth and not-found errors all mean "cannot fetch"
        raise hub_unreachable(what, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}") from None


def hub_pipeline(repo: str) -> Path:
    """A local diffusers folder for a hub pipeline: only the safetensors files its components need."""
    from diffusers import DiffusionPipeline

    return _fetch(repo, lambda local: DiffusionPipeline.download(repo, use_safetensors=True, local_files_only=local))


def hub_snapshot(repo: str, *, allow_patterns: list[str]) -> Path:
    """A local snapshot of the files of a hub repo matching `allow_patterns`."""
    from huggingface_hub import snapshot_download

    return _fetch(repo, lambda local: snapshot_download(repo, allow_patterns=allow_patterns,
                                                        local_files_only=local))


def sidecar_config(file: Path) -> Path | None:
    """`NAME.config/` beside `NAME.safetensors`: a local diffusers folder giving a single file its configs."""
    side = file.with_suffix(".config")
    return side if (side / "model_index.json").is_file() else None


def single_file_config(file: Path, config: str | None, default_repo: str, *, needs_weights: bool) -> Path:
    """The local diffusers folder that configures a single-file checkpoint (explicit, sidecar, or hub cache)."""
    if config is not None:
        p = Path(config).expanduser()
        if not (p / "model_index.json").is_file():
            raise ModelNotFoundError(f"config {config!r} is not a diffusers folder (no model_index.json in it)")
        return p
    side = sidecar_config(file)
    if side is not None:
        return side
    pats = ENCODER_PATTERNS if needs_weights else CONFIG_PATTERNS
    try:
        return hub_snapshot(default_repo, allow_patterns=pats)
    except ModelNotFoundError as e:
        what = "configs and tokenizers" + (", text encoders and VAE" if needs_weights else "")
        raise ModelNotFoundError(
            f"{file} is a single-file checkpoint; building it needs the {what} of its base model "
            f"{default_repo}, which is neither in the local hub cache nor downloadable ({e}). Fix: put a local "
            f"diffusers folder of the same model family beside it as {file.with_suffix('.config')}/ "
            "(or pass config=FOLDER to the loader)"
        ) from None


def load_pipeline(pipeline_cls: Any, source: str, *, dtype: torch.dtype, config: str | None, default_repo: str,
                  needs_weights: bool = False, **kwargs: Any) -> Loaded:
    """Load `pipeline_cls` from a diffusers folder, a single .safetensors file or a hub id, safetensors only."""
    p = Path(source).expanduser()
    if p.is_dir():
        check_diffusers_folder(p)
        pipe = pipeline_cls.from_pretrained(str(p), **dtype_kw(dtype), use_safetensors=True, **kwargs)
        return Loaded(pipe, folder_weight_files(p), "folder")
    if p.is_file():
        refuse_unless_safetensors(p)
        cfg = single_file_config(p, config, default_repo, needs_weights=needs_weights)
        check_diffusers_folder(cfg)
        pipe = pipeline_cls.from_single_file(str(p), config=str(cfg), **dtype_kw(dtype), **kwargs)
        extra = folder_weight_files(cfg) if needs_weights else []
        return Loaded(pipe, [p, *extra], "file")
    folder = hub_pipeline(source)
    check_diffusers_folder(folder)
    pipe = pipeline_cls.from_pretrained(str(folder), **dtype_kw(dtype), use_safetensors=True, **kwargs)
    return Loaded(pipe, folder_weight_files(folder), "hub")


def to_device(pipe: Any, device: str) -> Any:
    """Move a pipeline to `device`; on CPU, copy weights off the file mappings into aligned memory.

    Tensors loaded from safetensors point into the mapped file at arbitrary offsets; the kernels chosen for
    unaligned data round differently, so the same weights would give slightly different images depending on
    the file they came from. Fresh allocations make results depend on the weights only.
    """
    pipe = pipe.to(device)
    if torch.device(device).type == "cpu":
        for module in pipe.components.values():
            if isinstance(module, torch.nn.Module):
                with torch.no_grad():
                    for t in [*module.parameters(), *module.buffers()]:
                        t.data = t.data.clone()
    return pipe


def weights_digest(files: list[Path]) -> str:
    """sha256 of the weight files, first 10 hex digits (a single file: the A1111/Civitai 'AutoV2' hash)."""
    digests = []
    for f in files:
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        digests.append(h.hexdigest())
    if len(files) == 1:
        return digests[0][:10]
    combined = hashlib.sha256("".join(f"{f.parent.name}/{f.name}:{d}\n" for f, d in zip(files, digests)).encode())
    return combined.hexdigest()[:10]


# ---------------------------------------------------------------------------------------------------------------
# weighted, long prompts for CLIP text encoders (A1111 approach: 75-token chunks, per-token weights)

CHUNK = 75  # CLIP's 77-token window less BOS and EOS


def tokenize_weighted(tokenizer: Any, text: str) -> tuple[list[int], list[float]]:
    """Token ids (no specials) and one weight per token for a `(word:1.3)`-weighted prompt; BREAK pads a chunk."""
    ids: list[int] = []
    weights: list[float] = []
    for run, w in parse_weighted(text):
        for j, part in enumerate(re.split(r"\bBREAK\b", run)):
            if j > 0:  # BREAK: fill the current chunk so the next words start a fresh one
                pad = (-len(ids)) % CHUNK or (CHUNK if ids else 0)
                ids += [tokenizer.pad_token_id] * pad
                weights += [1.0] * pad
            toks = tokenizer(part, add_special_tokens=False, truncation=False).input_ids if part.strip() else []
            ids += toks
            weights += [w] * len(toks)
    return ids, weights


def chunk_tokens(tokenizer: Any, ids: list[int], weights: list[float], n_chunks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split into `n_chunks` windows of BOS + 75 tokens + EOS, padded: ids (n, 77) long, weights (n, 77)."""
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    rows, wrows = [], []
    for c in range(n_chunks):
        part, wpart = ids[c * CHUNK:(c + 1) * CHUNK], weights[c * CHUNK:(c + 1) * CHUNK]
        fill = CHUNK - len(part)
        rows.append([bos, *part, eos] + [pad] * fill)
        wrows.append([1.0, *wpart, 1.0] + [1.0] * fill)
    return torch.tensor(rows, dtype=torch.long), torch.tensor(wrows, dtype=torch.float32)


def n_chunks_for(*token_lists: list[int]) -> int:
    """How many 75-token windows the longest of the prompts needs (at least one)."""
    return max(1, *[-(-len(t) // CHUNK) for t in token_lists])


def apply_token_weights(z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Scale embeddings per token and restore the chunk's mean (A1111 emphasis); z (n, 77, D), w (n, 77)."""
    if torch.all(w == 1.0):
        return z
    zf = z.float()
    before = zf.mean(dim=(1, 2), keepdim=True)  # (n, 1, 1)
    zf = zf * w.to(zf.device)[..., None]
    after = zf.mean(dim=(1, 2), keepdim=True)
    ratio = before / after
    # the mean of a chunk can sit near zero (it does in small models): then the restore is ill-posed, skip it
    ratio = torch.where(torch.isfinite(ratio) & (ratio > 0.5) & (ratio < 2.0), ratio, torch.ones_like(ratio))
    zf = zf * ratio
    return zf.to(z.dtype)


@torch.no_grad()
def encode_clip_chunks(encoder: Any, ids: torch.Tensor, *, penultimate: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Encode (n, 77) windows: hidden states (n, 77, D) (last or penultimate layer) and pooled output or None."""
    dev = encoder.device
    out = encoder(ids.to(dev), output_hidden_states=penultimate)
    hidden = out.hidden_states[-2] if penultimate else out[0]
    pooled = out[0] if out[0].ndim == 2 else None  # CLIPTextModelWithProjection: text_embeds (n, P)
    return hidden, pooled


def weighted_clip_embeds(tokenizers: list[Any], encoders: list[Any], prompts: list[str], *,
                         penultimate: bool) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Embed several prompts to equal length: per prompt (1, 77*n, sum D) hidden states and pooled of chunk 0."""
    toks = [[tokenize_weighted(tok, p) for tok in tokenizers] for p in prompts]  # [prompt][encoder] -> (ids, w)
    n = n_chunks_for(*[ids for per in toks for ids, _ in per])
    out = []
    for per in toks:
        hiddens, pooled = [], None
        for (ids, w), tok, enc in zip(per, tokenizers, encoders):
            chunk_ids, chunk_w = chunk_tokens(tok, ids, w, n)
            h, p = encode_clip_chunks(enc, chunk_ids, penultimate=penultimate)  # (n, 77, D)
            hiddens.append(apply_token_weights(h, chunk_w))
            if p is not None:
                pooled = p[:1]  # (1, P): the first window's pooled output, as A1111 does
        z = torch.cat(hiddens, dim=-1)  # (n, 77, sum D)
        out.append((z.reshape(1, -1, z.shape[-1]), pooled))
    return out


# ---------------------------------------------------------------------------------------------------------------
# the generate loop shared by every family


def _round_down(v: int, multiple: int) -> int:
    return max(multiple, (int(v) // multiple) * multiple)


def _capture_x0(scheduler: Any, sink: dict) -> None:
    """Record each step's predicted clean latent for previews (flow schedulers: x0 = x_t - sigma * v)."""
    step = scheduler.step
    flow = type(scheduler).__name__.startswith("FlowMatch")

    def capturing_step(model_output: Any, timestep: Any, sample: Any, *args: Any, return_dict: bool = True,
                       **kwargs: Any) -> Any:
        out = step(model_output, timestep, sample, *args, return_dict=True, **kwargs)
        x0 = getattr(out, "pred_original_sample", None)
        if x0 is None and flow and scheduler.step_index:
            sigma = scheduler.sigmas[scheduler.step_index - 1]
            x0 = sample - sigma * model_output
        sink["x0"] = x0
        return out if return_dict else (out.prev_sample,)

    scheduler.step = capturing_step


def _guidance_stop(callback: Callable, end: float, stacked: list[str]) -> Callable:
    """A step callback that, once the first ceil(end * n) of the n steps have run guided, turns classifier-free
    guidance off for the rest: one pass per step instead of two (a guidance interval, Kynkaanniemi et al.
    2024). The stacked [unconditional, conditional] tensors keep their conditional half."""

    def step(pipe: Any, i: int, t: Any, kwargs: dict) -> dict:
        out = callback(pipe, i, t, kwargs) or {}
        n = getattr(pipe, "_num_timesteps", None) or 0
        if n and pipe.do_classifier_free_guidance and i + 1 >= math.ceil(end * n - 1e-9):
            pipe._guidance_scale = 1.0  # diffusers guides only above 1
            batch = kwargs["latents"].shape[0]
            for name in stacked:
                v = kwargs.get(name)
                if isinstance(v, torch.Tensor) and v.shape[0] == 2 * batch:
                    out[name] = v.chunk(2)[1]
        return out

    return step


@dataclass
class FamilyInfo:
    """What distinguishes one family inside the shared diffusers wrapper."""

    name: str
    pipelines: dict[Mode, str]  # mode -> diffusers pipeline class name (outpaint reuses inpaint)
    flow: bool
    size_multiple: int
    default_steps: int
    default_guidance: float
    default_size: int
    default_sampler: str
    negative_prompt: bool = True
    notes: str = ""
    # step-callback tensors the pipelines stack [unconditional, conditional] for classifier-free guidance;
    # a family that names them can stop guiding part-way (`guidance_end`), halving the later steps' cost
    cfg_batched: tuple[str, ...] = ()


@dataclass
class DiffusersModel:
    """A LoadedModel over diffusers pipelines that share one set of components."""

    id: str
    info: FamilyInfo
    base: Any  # the pipeline loaded first; the other modes are built from it with from_pipe
    weight_files: list[Path]
    dtype: torch.dtype
    modes: list[Mode]
    _pipes: dict[str, Any] = field(default_factory=dict, repr=False)
    _hash: str | None = field(default=None, repr=False)
    _loras: Any = field(default=None, repr=False)
    _scheduler_config: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.base.set_progress_bar_config(disable=True)
        self._pipes[type(self.base).__name__] = self.base
        self._scheduler_config = self.base.scheduler.config

    # -- LoadedModel -----------------------------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        """Modes, samplers and defaults of this model."""
        i = self.info
        return Capabilities(
            model=self.id, family=i.name, modes=list(self.modes), lora=True, negative_prompt=i.negative_prompt,
            samplers=list(FLOW_SAMPLERS if i.flow else SAMPLERS), default_sampler=i.default_sampler,
            default_steps=i.default_steps, default_guidance=i.default_guidance, default_width=self.native_size(),
            default_height=self.native_size(), size_multiple=i.size_multiple, notes=i.notes,
            default_guidance_end=1.0 if i.cfg_batched else None,
        )

    def native_size(self) -> int:
        """The side the model was trained at, as diffusers' pipelines default to it (sample size x VAE factor)."""
        n = getattr(self.base, "default_sample_size", None) or getattr(self.denoiser().config, "sample_size", None)
        if isinstance(n, (list, tuple)):
            n = n[0]
        if not n:
            return self.info.default_size
        m = self.info.size_multiple
        return max(m, int(n * self.base.vae_scale_factor) // m * m)

    def weights_hash(self) -> str:
        """sha256 of the weight files (first 10 hex digits), computed once."""
        if self._hash is None:
            self._hash = weights_digest(self.weight_files)
        return self._hash

    def generate(self, job: Job, progress: ProgressFn) -> list[Output]:
        """Run t2i / i2i / inpaint / outpaint through the matching diffusers pipeline, one item per seed."""
        req = job.request
        if job.mode not in self.modes:
            raise UnsupportedError(f"mode {job.mode.value!r} is not supported; {self.capabilities().summary()}")
        caps = self.capabilities()
        self.set_loras([(l.path, l.weight) for l in req.loras])
        pipe = self.pipeline(job.mode)
        pipe.scheduler = make_scheduler(self._scheduler_config, req.sampler or caps.default_sampler,
                                        flow=self.info.flow)
        sink: dict = {}
        _capture_x0(pipe.scheduler, sink)
        steps = req.steps or caps.default_steps
        guidance = caps.default_guidance if req.guidance is None else req.guidance
        call: dict[str, Any] = {"num_inference_steps": steps, "guidance_scale": guidance, "output_type": "pil"}
        call.update(self.encode_prompt(pipe, req.prompt, req.negative_prompt, guidance))
        if job.mode == Mode.T2I:
            w = _round_down(req.width or caps.default_width, self.info.size_multiple)
            h = _round_down(req.height or caps.default_height, self.info.size_multiple)
        elif job.mode == Mode.I2I:
            call.update(self._i2i_inputs(job, caps, steps))
            w, h = call["image"].size
        else:
            call.update(self._inpaint_inputs(job))
            w, h = call["image"].size
        if self.accepts_size(pipe):
            call.update(width=w, height=h)
        guidance_end = 1.0 if req.guidance_end is None else req.guidance_end
        stacked = self._cfg_tensors(pipe, job.mode) if guidance_end < 1.0 else []
        if stacked:
            call["callback_on_step_end_tensor_inputs"] = ["latents", *stacked]
        seed = req.seed if req.seed is not None else 0
        outputs = []
        for item in range(req.n):
            generator = torch.Generator("cpu").manual_seed(seed + item)
            cb = self._progress_callback(progress, item, req.n, sink, w, h)
            if stacked:
                cb = _guidance_stop(cb, guidance_end, stacked)
            image = pipe(**call, generator=generator, callback_on_step_end=cb).images[0]
            outputs.append(Output(kind="image", image=image, seed=seed + item))
        return outputs

    # -- pieces ----------------------------------------------------------------------------------------------
    def _cfg_tensors(self, pipe: Any, mode: Mode) -> list[str]:
        """The guidance-stacked tensors this pipeline hands its step callback; refuses when it cannot stop
        guiding part-way."""
        names = [n for n in self.info.cfg_batched if n in getattr(pipe, "_callback_tensor_inputs", [])]
        if not names:
            raise UnsupportedError(f"guidance_end below 1 is not supported for {mode.value} with {type(pipe).__name__}"
                                   f"; leave it out (guidance runs on every step). {self.capabilities().summary()}")
        return names

    def pipeline(self, mode: Mode) -> Any:
        """The pipeline for a mode, built once from the base pipeline's components."""
        import diffusers

        cls_name = self.info.pipelines[Mode.INPAINT if mode == Mode.OUTPAINT else mode]
        if cls_name not in self._pipes:
            from diffusers.utils import logging as dlog

            level = dlog.get_verbosity()
            dlog.set_verbosity_error()  # from_pipe's re-cast of already-cast modules only logs noise
            try:
                pipe = getattr(diffusers, cls_name).from_pipe(self.base, **dtype_kw(self.dtype))
            finally:
                dlog.set_verbosity(level)
            pipe.set_progress_bar_config(disable=True)
            self._pipes[cls_name] = pipe
        return self._pipes[cls_name]

    def encode_prompt(self, pipe: Any, prompt: str, negative: str, guidance: float) -> dict[str, Any]:
        """Keyword arguments carrying the prompt into the pipeline call (families override)."""
        return {"prompt": plain_text(prompt), "negative_prompt": plain_text(negative) or None}

    @staticmethod
    def accepts_size(pipe: Any) -> bool:
        """Whether the pipeline call takes width/height (img2img pipelines size from the image)."""
        import inspect

        params = inspect.signature(type(pipe).__call__).parameters
        return "width" in params and "height" in params

    def denoiser(self) -> torch.nn.Module:
        """The UNet or transformer."""
        return getattr(self.base, "unet", None) or self.base.transformer

    def lora_targets(self) -> dict[str, torch.nn.Module]:
        """Component name -> module that LoRAs may patch."""
        names = ("unet", "transformer", "text_encoder", "text_encoder_2", "text_encoder_3")
        return {n: m for n in names if (m := getattr(self.base, n, None)) is not None}

    def set_loras(self, loras: list[tuple[str, float]]) -> None:
        """Make exactly these LoRAs active (merged into the weights); the previous set is undone bit-exact."""
        from mediagen.lora import LoraSet

        key = tuple(loras)
        if self._loras is not None and self._loras.key == key:
            return
        if self._loras is not None:
            self._loras.restore()
            self._loras = None
        if loras:
            lora_set = LoraSet.apply(self.lora_targets(), loras, unet_config=self._unet_config())
            self._loras = lora_set

    def _unet_config(self) -> dict | None:
        unet = getattr(self.base, "unet", None)
        return dict(unet.config) if unet is not None else None

    def latents_to_image(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> Any:
        """Decode (1, C, h, w) latents (family layout) to a PIL image with the pipeline's VAE."""
        vae = pipe.vae
        z = latents[:1].to(vae.dtype) / vae.config.scaling_factor
        shift = getattr(vae.config, "shift_factor", None)
        if shift:
            z = z + shift
        with torch.no_grad():
            img = vae.decode(z, return_dict=False)[0]
        return pipe.image_processor.postprocess(img, output_type="pil")[0]

    def _progress_callback(self, progress: ProgressFn, item: int, items: int, sink: dict, width: int,
                           height: int) -> Callable:
        def preview_of(pipe: Any, latents: torch.Tensor) -> Callable[[], Any]:
            def preview() -> Any:
                x0 = sink.get("x0")
                src = x0 if x0 is not None and x0.shape == latents.shape else latents
                img = self.latents_to_image(pipe, src.detach(), width, height)
                img.thumbnail((256, 256))
                return img

            return preview

        def callback(pipe: Any, i: int, t: Any, kwargs: dict) -> dict:
            steps = getattr(pipe, "_num_timesteps", None) or getattr(pipe, "num_timesteps", 0)
            progress(Progress(item=item, items=items, step=i + 1, steps=steps,
                              preview=preview_of(pipe, kwargs["latents"])))
            return {}

        return callback

    def _i2i_inputs(self, job: Job, caps: Capabilities, steps: int) -> dict[str, Any]:
        req = job.request
        if job.image is None:
            raise RequestError("image-to-image needs --image")
        strength = caps.default_strength if req.strength is None else req.strength
        if int(steps * strength) < 1:
            raise RequestError(
                f"strength {strength} with {steps} steps runs no denoising step: raise --strength or --steps "
                f"(steps x strength must be at least 1)"
            )
        m = self.info.size_multiple
        img = job.image.convert("RGB")
        w = _round_down(req.width or img.width, m)
        h = _round_down(req.height or img.height, m)
        if img.size != (w, h):
            from PIL import Image

            img = img.resize((w, h), Image.LANCZOS)
        return {"image": img, "strength": strength}

    def _inpaint_inputs(self, job: Job) -> dict[str, Any]:
        return prepare_inpaint(job, self.info.size_multiple)


def prepare_inpaint(job: Job, multiple: int) -> dict[str, Any]:
    """Image, mask and strength for an inpaint pipeline call.

    Outpainting and only-masked inpainting reach a family as inpainting on a canvas or crop, and the exact
    composite back onto the original happens in the core (mediagen.edits.plan_edit).
    """
    from PIL import Image

    req = job.request
    if job.mode != Mode.INPAINT or job.image is None or job.mask is None:
        raise RequestError(
            f"{job.mode.value} reaches a family as inpainting with an image and a mask: "
            "run it through mediagen (Mediagen.generate), which plans the canvas and composites the result"
        )
    image = job.image.convert("RGB")
    mask = np.asarray(job.mask, dtype=np.float32)  # (H, W), same size as the image
    strength = 1.0 if req.strength is None else req.strength
    size = (_round_down(image.width, multiple), _round_down(image.height, multiple))
    work = image if image.size == size else image.resize(size, Image.LANCZOS)
    mask_img = Image.fromarray(np.clip(np.rint(mask * 255.0), 0, 255).astype(np.uint8), mode="L")
    if mask_img.size != size:
        mask_img = mask_img.resize(size, Image.BILINEAR)
    return {"image": work, "mask_image": mask_img, "strength": strength}


# ---------------------------------------------------------------------------------------------------------------
# original (LDM/SGM) UNet names, for single-file checkpoints and kohya LoRAs

_UNET_TOP_TO_LDM = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "class_embedding.linear_1": "label_emb.0.0",
    "class_embedding.linear_2": "label_emb.0.2",
}
_RESNET_TO_LDM = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}


def unet_name_to_ldm(name: str, config: dict) -> str | None:
    """A diffusers UNet2DConditionModel module/parameter name in the original LDM/SGM layout (None: no twin)."""
    per = config.get("layers_per_block", 2)
    if isinstance(per, (list, tuple)):
        if len(set(per)) != 1:
            return None
        per = per[0]
    span = per + 1  # LDM numbers every resnet(+attention) pair and the down/upsampler consecutively

    def resnet(rest: str | None) -> str:
        if not rest:
            return ""
        head, _, tail = rest.partition(".")
        return "." + _RESNET_TO_LDM.get(head, head) + ("." + tail if tail else "")

    def tail(rest: str | None) -> str:
        return "." + rest if rest else ""

    for k, v in _UNET_TOP_TO_LDM.items():
        if name == k or name.startswith(k + "."):
            return v + name[len(k):]
    if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)(?:\.(.*))?$", name):
        b, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        idx = 1 + b * span + j
        return f"input_blocks.{idx}.0{resnet(rest)}" if kind == "resnets" else f"input_blocks.{idx}.1{tail(rest)}"
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv(?:\.(.*))?$", name):
        return f"input_blocks.{(int(m[1]) + 1) * span}.0.op{tail(m[2])}"
    if m := re.match(r"mid_block\.resnets\.(\d+)(?:\.(.*))?$", name):
        return f"middle_block.{0 if m[1] == '0' else 2}{resnet(m[2])}"
    if m := re.match(r"mid_block\.attentions\.0(?:\.(.*))?$", name):
        return f"middle_block.1{tail(m[1])}"
    if m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)(?:\.(.*))?$", name):
        b, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        idx = b * span + j
        return f"output_blocks.{idx}.0{resnet(rest)}" if kind == "resnets" else f"output_blocks.{idx}.1{tail(rest)}"
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv(?:\.(.*))?$", name):
        b = int(m[1])
        has_attn = "CrossAttn" in config["up_block_types"][b]
        return f"output_blocks.{b * span + per}.{2 if has_attn else 1}.conv{tail(m[2])}"
    return None
