"""The one request schema behind every surface (Python API, CLI, HTTP server, web UI).

A mode is not chosen from a menu: it is resolved from which inputs a request carries, the way diffusers'
modular pipelines map present inputs to a workflow. Conditions (control maps, references, a subject, audio,
LoRAs) combine freely with any base mode.
"""

from __future__ import annotations

import hashlib
import io
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from mediagen.errors import RequestError


class Mode(str, Enum):
    """Base generation modes; each fixes the output kind and the primary input."""

    T2I = "t2i"
    I2I = "i2i"
    INPAINT = "inpaint"
    OUTPAINT = "outpaint"
    T2V = "t2v"
    I2V = "i2v"
    V2V = "v2v"

    @property
    def is_video(self) -> bool:
        return self in (Mode.T2V, Mode.I2V, Mode.V2V)


MODE_HELP = {
    Mode.T2I: "text to image: a prompt",
    Mode.I2I: "image to image: a prompt and --image (with --strength)",
    Mode.INPAINT: "inpainting: a prompt, --image and --mask (white = regenerate)",
    Mode.OUTPAINT: "outpainting: a prompt, --image and --extend LEFT,TOP,RIGHT,BOTTOM",
    Mode.T2V: "text to video: a prompt and --frames",
    Mode.I2V: "image to video: a prompt, --image as the first frame and --frames",
    Mode.V2V: "video to video: a prompt and --video (with --strength)",
}

CONTROL_KINDS = ("depth", "edge", "pose", "seg")
REFERENCE_ROLES = ("identity", "style", "composition")


def _media_ref(value: Any) -> Any:
    """Serialise an in-memory input as a content reference, a path as itself."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    return {"sha256": media_digest(value)}


def media_digest(value: Any) -> str:
    """SHA-256 of an input's content (file bytes, or raw pixels for in-memory images/arrays)."""
    if isinstance(value, (str, Path)):
        p = Path(value)
        if p.is_file():
            return hashlib.sha256(p.read_bytes()).hexdigest()
        return hashlib.sha256(str(value).encode()).hexdigest()
    if hasattr(value, "tobytes") and hasattr(value, "size") and hasattr(value, "mode"):  # PIL image
        buf = io.BytesIO()
        value.save(buf, format="PNG")
        return hashlib.sha256(buf.getvalue()).hexdigest()
    arr = np.ascontiguousarray(np.asarray(value))
    return hashlib.sha256(arr.tobytes() + str(arr.shape).encode()).hexdigest()


def _check_media(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("an input path is empty: give a file path, a URL or a data: URI")
        return value
    if isinstance(value, (list, tuple)):  # a clip given as a list of frames
        return list(value)
    if hasattr(value, "mode") and hasattr(value, "size"):  # PIL image
        return value
    if isinstance(value, np.ndarray) or type(value).__name__ == "Tensor":
        return value
    raise ValueError(
        f"unsupported input of type {type(value).__name__}: give a file path, a PIL image or an array"
    )


Media = Annotated[
    Any,
    BeforeValidator(_check_media),
    PlainSerializer(_media_ref, when_used="always"),
    WithJsonSchema({"type": "string", "description": "file path, URL or data: URI"}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, validate_assignment=True)


class Extend(_Strict):
    """Pixels to add on each side of the image for outpainting."""

    left: int = Field(0, ge=0)
    top: int = Field(0, ge=0)
    right: int = Field(0, ge=0)
    bottom: int = Field(0, ge=0)

    @classmethod
    def parse(cls, text: str) -> "Extend":
        """Parse 'LEFT,TOP,RIGHT,BOTTOM' (pixels) or one number for all sides."""
        parts = [p.strip() for p in text.split(",")]
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            raise RequestError(f"--extend {text!r}: expected LEFT,TOP,RIGHT,BOTTOM in pixels, e.g. 64,0,64,0") from None
        if len(nums) == 1:
            nums = nums * 4
        if len(nums) != 4:
            raise RequestError(f"--extend {text!r}: expected 4 numbers LEFT,TOP,RIGHT,BOTTOM (or one for all sides)")
        return cls(left=nums[0], top=nums[1], right=nums[2], bottom=nums[3])

    @property
    def any(self) -> bool:
        return bool(self.left or self.top or self.right or self.bottom)


class Control(_Strict):
    """A control map (depth, edge, pose, segmentation) that steers layout."""

    kind: Literal["depth", "edge", "pose", "seg"]
    image: Media
    weight: float = Field(1.0, ge=0.0, le=2.0)
    start: float = Field(0.0, ge=0.0, le=1.0, description="fraction of the steps where control starts")
    end: float = Field(1.0, ge=0.0, le=1.0, description="fraction of the steps where control ends")


class Reference(_Strict):
    """A reference image lending identity, style or composition."""

    image: Media
    role: Literal["identity", "style", "composition"] = "identity"
    weight: float = Field(1.0, ge=0.0, le=2.0)


class Lora(_Strict):
    """A LoRA (diffusers or kohya safetensors) applied with a weight."""

    path: str
    weight: float = Field(1.0, ge=-4.0, le=4.0)


class GenerationRequest(_Strict):
    """Everything a generation needs; the mode is resolved from the inputs present."""

    prompt: str = Field("", description="what to generate; (word:1.3) weights a word")
    negative_prompt: str = Field("", description="what to steer away from")
    model: str | None = Field(None, description="model id, folder or .safetensors file (default: builtin)")
    mode: Mode | None = Field(None, description="optional: checked against the inputs when given")
    seed: int | None = Field(None, ge=0, lt=2**63, description="random seed (default: random, recorded)")
    steps: int | None = Field(None, ge=1, le=1000)
    guidance: float | None = Field(None, ge=0.0, le=50.0, description="classifier-free guidance scale")
    guidance_end: float | None = Field(None, gt=0.0, le=1.0, description="share of the steps that run, from the "
                                       "first, that use guidance; later ones run one pass instead of two (faster; "
                                       "default: the model's)")
    sampler: str | None = None
    width: int | None = Field(None, ge=8, le=8192)
    height: int | None = Field(None, ge=8, le=8192)
    n: int = Field(1, ge=1, le=64, description="number of outputs")
    image: Media | None = Field(None, description="init image (i2i), image to edit, or first frame (i2v)")
    strength: float | None = Field(None, ge=0.0, le=1.0, description="how much of the input to change")
    mask: Media | None = Field(None, description="white = regenerate")
    mask_blur: int = Field(4, ge=0, le=256, description="soft blend width at the mask edge, pixels (feather)")
    mask_blend: Literal["gradient", "feather"] = Field(
        "gradient", description="how generated pixels meet the original at the mask edge: gradient shifts them "
        "by a smooth field so its colours continue across the edge, keeping all their detail (Poisson "
        "blending); feather mixes the two images' colours over the mask blur width")
    inpaint_only_masked: bool = Field(False, description="crop around the mask, generate there, stitch back")
    inpaint_padding: int = Field(32, ge=0, le=1024, description="context around the mask for only-masked")
    extend: Extend | None = Field(None, description="outpainting: pixels added per side")
    video: Media | None = Field(None, description="input clip (v2v)")
    frames: int | None = Field(None, ge=1, le=1024)
    fps: float | None = Field(None, gt=0, le=120)
    controls: list[Control] = Field(default_factory=list)
    references: list[Reference] = Field(default_factory=list)
    subject: str | None = Field(None, description="name of a learned subject")
    audio: bool = Field(False, description="generate a soundtrack in sync with the video")
    loras: list[Lora] = Field(default_factory=list)

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()

    @model_validator(mode="after")
    def _inputs_agree(self) -> "GenerationRequest":
        if self.mask is not None and self.image is None:
            raise ValueError("a mask needs the image it applies to: add --image")
        if self.extend is not None and self.image is None:
            raise ValueError("--extend (outpainting) needs an image to extend: add --image")
        for c in self.controls:
            if c.end < c.start:
                raise ValueError(f"control {c.kind}: end ({c.end}) is before start ({c.start})")
        return self

    # -- mode resolution -------------------------------------------------------------------------
    def resolved_mode(self) -> Mode:
        """The base mode these inputs ask for; an explicit `mode` must agree with them."""
        inferred = infer_mode(self)
        if self.mode is None or self.mode == inferred:
            return inferred
        need = _MODE_NEEDS[self.mode]
        raise RequestError(
            f"mode {self.mode.value!r} does not match the inputs given (they ask for {inferred.value!r}); "
            f"{self.mode.value} needs {need}"
        )

    def conditions(self) -> list[str]:
        """Conditions layered on the base mode, e.g. ['control:depth', 'reference:style', 'lora']."""
        out = [f"control:{c.kind}" for c in self.controls]
        out += [f"reference:{r.role}" for r in self.references]
        if self.subject:
            out.append("subject")
        if self.audio:
            out.append("audio")
        if self.loras:
            out.append("lora")
        if self.negative_prompt:
            out.append("negative_prompt")
        return list(dict.fromkeys(out))

    def describe_mode(self) -> str:
        """Human-readable mode, e.g. 'inpaint + control:depth'."""
        return " + ".join([self.resolved_mode().value] + self.conditions())


_MODE_NEEDS = {
    Mode.T2I: "a prompt and no image, mask, video or --frames",
    Mode.I2I: "--image (and no mask or --extend)",
    Mode.INPAINT: "--image and --mask",
    Mode.OUTPAINT: "--image and --extend",
    Mode.T2V: "--frames > 1 and no image or video",
    Mode.I2V: "--image and --frames > 1",
    Mode.V2V: "--video",
}


def infer_mode(req: GenerationRequest) -> Mode:
    """Map the inputs present to a base mode (explicit video modes win over image modes)."""
    wants_video = (req.frames or 1) > 1 or req.mode in (Mode.T2V, Mode.I2V) or (req.mode is None and req.audio)
    if req.video is not None:
        return Mode.V2V
    if req.image is not None:
        if req.extend is not None and req.extend.any:
            return Mode.OUTPAINT
        if req.mask is not None:
            return Mode.INPAINT
        return Mode.I2V if wants_video else Mode.I2I
    return Mode.T2V if wants_video else Mode.T2I


def request_json_schema() -> dict:
    """The JSON schema every surface (CLI, server, UI) is built from."""
    return GenerationRequest.model_json_schema()
