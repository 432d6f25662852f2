"""The Python API: a typed request in, outputs with their recipes out; one-line calls per mode."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediagen import __version__
from mediagen.capabilities import Capabilities, check_request
from mediagen.errors import RequestError
from mediagen.model import Job, LoadedModel, Output, Progress, ProgressFn
from mediagen.schema import Extend, GenerationRequest, Mode
from mediagen.settings import Settings


@dataclass
class Result:
    """What a generation produced: outputs, the recipe of each, and the mode that ran."""

    outputs: list[Output]
    recipes: list[dict]
    mode: str
    model: str

    @property
    def images(self) -> list[Any]:
        """The PIL images of image outputs."""
        return [o.image for o in self.outputs if o.kind == "image"]

    @property
    def image(self) -> Any:
        """The first image."""
        imgs = self.images
        if not imgs:
            raise RequestError("this result holds no image (it is a video result: use .outputs)")
        return imgs[0]

    def save(self, path: str | Path) -> list[Path]:
        """Write every output with its recipe embedded; several outputs get -1, -2, ... suffixes."""
        from mediagen.media import save_image, save_video

        path = Path(path)
        paths = output_paths(path, len(self.outputs))
        for out, recipe, p in zip(self.outputs, self.recipes, paths):
            if out.kind == "image":
                save_image(p, out.image, recipe)
            else:
                save_video(p, out.frames, out.fps, audio=out.audio, sample_rate=out.sample_rate, recipe=recipe)
        return paths


def output_paths(path: Path, n: int) -> list[Path]:
    """`out.png` for one output; `out-1.png`, `out-2.png`, ... for several."""
    if n == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i + 1}{path.suffix}") for i in range(n)]


@dataclass
class Mediagen:
    """A generation context: settings plus the models loaded so far (kept for reuse)."""

    settings: Settings = field(default_factory=Settings.from_env)
    _models: dict[str, LoadedModel] = field(default_factory=dict, repr=False)

    def model(self, model_id: str | None = None) -> LoadedModel:
        """Load (once) and return a model."""
        from mediagen.registry import load_model

        key = model_id or self.settings.default_model
        if key not in self._models:
            self._models[key] = load_model(key, self.settings)
        return self._models[key]

    def capabilities(self, model_id: str | None = None) -> Capabilities:
        """What a model supports."""
        return self.model(model_id).capabilities()

    def prepare(self, request: GenerationRequest) -> tuple[LoadedModel, Job]:
        """Check a request against its model, fill every default, and load its inputs."""
        request.resolved_mode()  # inputs that contradict the mode fail before any file or model is read
        check_input_files(request)
        model = self.model(request.model)
        caps = model.capabilities()
        mode = check_request(request, caps)
        filled = fill_defaults(request, caps, mode)
        return model, load_inputs(filled, mode)

    def generate(self, request: GenerationRequest, progress: ProgressFn | None = None) -> Result:
        """Run a request and return its outputs and recipes."""
        from mediagen.edits import plan_edit

        model, job = self.prepare(request)
        work, finish = plan_edit(job, model.capabilities())
        outputs = finish(model.generate(work, progress or (lambda p: None)))
        return Result(outputs, recipes_for(job, model, outputs), job.request.describe_mode(), model.id)


def check_input_files(req: GenerationRequest) -> None:
    """Fail fast, before any model loads, when an input names a file that is not there."""
    named = [("--image", req.image), ("--mask", req.mask), ("--video", req.video)]
    named += [(f"--control {c.kind}", c.image) for c in req.controls]
    named += [("--reference", r.image) for r in req.references]
    for flag, value in named:
        if isinstance(value, (str, Path)) and not str(value).startswith(("data:", "http://", "https://")):
            if not Path(value).is_file():
                raise RequestError(f"{flag} {value}: no such file; check the path")


def fill_defaults(req: GenerationRequest, caps: Capabilities, mode: Mode) -> GenerationRequest:
    """A copy of the request with seed, steps, guidance, sampler, size, strength and frames set."""
    upd: dict[str, Any] = {
        "model": req.model or caps.model,
        "seed": req.seed if req.seed is not None else secrets.randbelow(2**32),
        "steps": req.steps or caps.default_steps,
        "guidance": req.guidance if req.guidance is not None else caps.default_guidance,
        "sampler": req.sampler or caps.default_sampler,
        "mode": mode,
    }
    if mode in (Mode.T2I, Mode.T2V):
        upd["width"] = req.width or caps.default_width
        upd["height"] = req.height or caps.default_height
    if mode in (Mode.I2I, Mode.V2V) and req.strength is None:
        upd["strength"] = caps.default_strength
    if mode.is_video:
        upd["frames"] = req.frames or caps.default_frames
        upd["fps"] = req.fps or caps.default_fps
    return req.model_copy(update=upd)


def load_inputs(req: GenerationRequest, mode: Mode) -> Job:
    """Decode the request's inputs into a Job (images as RGB, the mask resized to the image)."""
    from mediagen.media import load_image, load_video

    job = Job(request=req, mode=mode)
    if req.image is not None:
        job.image = load_image(req.image)
    if req.mask is not None:
        from mediagen.engine.masks import prepare_mask

        job.mask = prepare_mask(req.mask, job.image.size)
    if req.video is not None:
        job.video, job.video_fps = load_video(req.video, max_frames=req.frames)
    job.controls = [(c, load_image(c.image)) for c in req.controls]
    job.references = [(r, load_image(r.image)) for r in req.references]
    return job


def recipes_for(job: Job, model: LoadedModel, outputs: list[Output]) -> list[dict]:
    """One recipe per output: the full request, the model and its weights hash, the seed, the version."""
    from mediagen.recipe import build_recipe

    whash = model.weights_hash()
    return [
        build_recipe(job.request, mode=job.request.describe_mode(), model_id=model.id, weights_hash=whash,
                     seed=out.seed if out.seed is not None else job.request.seed, version=__version__)
        for out in outputs
    ]


# -- one-line calls ------------------------------------------------------------------------------
def generate(request: GenerationRequest | None = None, *, progress: ProgressFn | None = None,
             settings: Settings | None = None, **fields: Any) -> Result:
    """Run a request (or build one from keyword fields); the mode is inferred from the inputs."""
    req = request if request is not None else GenerationRequest(**fields)
    if request is not None and fields:
        req = request.model_copy(update=fields)
    return Mediagen(settings or Settings.from_env()).generate(req, progress)


def t2i(prompt: str, **kw: Any) -> Result:
    """Text to image."""
    return generate(prompt=prompt, mode=Mode.T2I, **kw)


def i2i(prompt: str, image: Any, strength: float | None = None, **kw: Any) -> Result:
    """Image to image at `strength` (0 keeps the input, 1 ignores it)."""
    return generate(prompt=prompt, image=image, strength=strength, mode=Mode.I2I, **kw)


def inpaint(prompt: str, image: Any, mask: Any, **kw: Any) -> Result:
    """Regenerate the white part of `mask`; every pixel outside it is kept exactly."""
    return generate(prompt=prompt, image=image, mask=mask, mode=Mode.INPAINT, **kw)


def outpaint(prompt: str, image: Any, extend: Extend | str | tuple[int, int, int, int], **kw: Any) -> Result:
    """Extend the canvas by (left, top, right, bottom) pixels and fill the new area."""
    if isinstance(extend, str):
        extend = Extend.parse(extend)
    elif isinstance(extend, tuple):
        extend = Extend(left=extend[0], top=extend[1], right=extend[2], bottom=extend[3])
    return generate(prompt=prompt, image=image, extend=extend, mode=Mode.OUTPAINT, **kw)


def t2v(prompt: str, frames: int | None = None, **kw: Any) -> Result:
    """Text to video."""
    return generate(prompt=prompt, frames=frames, mode=Mode.T2V, **kw)


def i2v(prompt: str, image: Any, frames: int | None = None, **kw: Any) -> Result:
    """Image to video with `image` as the first frame."""
    return generate(prompt=prompt, image=image, frames=frames, mode=Mode.I2V, **kw)


def v2v(prompt: str, video: Any, strength: float | None = None, **kw: Any) -> Result:
    """Restyle a clip, keeping its motion."""
    return generate(prompt=prompt, video=video, strength=strength, mode=Mode.V2V, **kw)


__all__ = ["Mediagen", "Result", "Progress", "generate", "t2i", "i2i", "inpaint", "outpaint", "t2v", "i2v", "v2v"]
