"""What a model supports, and the check of a request against it (errors list what is supported)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mediagen.errors import UnsupportedError
from mediagen.schema import GenerationRequest, Mode


class Capabilities(BaseModel):
    """A model's modes, conditions and defaults: the data `mediagen modes` prints and the server exposes."""

    model_config = ConfigDict(extra="forbid")

    model: str
    family: str
    modes: list[Mode]
    control_kinds: list[str] = Field(default_factory=list)
    reference_roles: list[str] = Field(default_factory=list)
    subjects: bool = False
    audio: bool = False
    lora: bool = False
    negative_prompt: bool = True
    default_guidance_end: float | None = None  # None: guidance on every step, and guidance_end below 1 refused
    samplers: list[str]
    default_sampler: str
    default_steps: int
    default_guidance: float
    default_width: int
    default_height: int
    size_multiple: int = 8
    min_size: int = 64
    max_size: int = 2048
    default_frames: int | None = None
    max_frames: int | None = None
    default_fps: float | None = None
    default_strength: float = 0.6
    notes: str = ""

    def summary(self) -> str:
        """One line listing modes and conditions, for error messages."""
        conds = [f"control:{k}" for k in self.control_kinds] + [f"reference:{r}" for r in self.reference_roles]
        conds += [c for c, ok in (("subject", self.subjects), ("audio", self.audio), ("lora", self.lora)) if ok]
        return (
            f"model {self.model!r} supports modes: {', '.join(m.value for m in self.modes)}; "
            f"conditions: {', '.join(conds) or 'none'}"
        )


def check_request(req: GenerationRequest, caps: Capabilities) -> Mode:
    """Resolve the request's mode and refuse anything the model cannot honour, naming what it supports."""
    mode = req.resolved_mode()
    problems: list[str] = []
    if mode not in caps.modes:
        problems.append(f"mode {mode.value!r} is not supported")
    for c in req.controls:
        if c.kind not in caps.control_kinds:
            problems.append(f"control {c.kind!r} is not supported")
    for r in req.references:
        if r.role not in caps.reference_roles:
            problems.append(f"reference role {r.role!r} is not supported")
    if req.subject and not caps.subjects:
        problems.append("subjects are not supported")
    if req.audio and not caps.audio:
        problems.append("audio is not supported")
    if req.loras and not caps.lora:
        problems.append("LoRA is not supported")
    if req.negative_prompt and not caps.negative_prompt:
        problems.append("a negative prompt is not supported")
    if req.guidance_end is not None and req.guidance_end < 1.0 and caps.default_guidance_end is None:
        problems.append(f"guidance_end {req.guidance_end:g} is not supported (guidance runs on every step)")
    if req.sampler and req.sampler not in caps.samplers:
        problems.append(f"sampler {req.sampler!r} is unknown (samplers: {', '.join(caps.samplers)})")
    for name, v in (("width", req.width), ("height", req.height)):
        if v is not None and (v % caps.size_multiple or not caps.min_size <= v <= caps.max_size):
            problems.append(
                f"{name} {v} must be a multiple of {caps.size_multiple} between {caps.min_size} and {caps.max_size}"
            )
    if req.frames is not None and req.frames > 1 and caps.max_frames is not None and req.frames > caps.max_frames:
        problems.append(f"frames {req.frames} is over the model's maximum of {caps.max_frames}")
    if problems:
        raise UnsupportedError("; ".join(problems) + f". {caps.summary()}")
    return mode
