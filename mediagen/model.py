"""The contract between the core and a model family: a resolved Job in, Outputs out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

import numpy as np

from mediagen.capabilities import Capabilities
from mediagen.schema import Control, GenerationRequest, Mode, Reference


@dataclass
class Job:
    """A request with every default filled in (seed, steps, size, ...) and its inputs loaded."""

    request: GenerationRequest  # defaults already filled: seed, steps, guidance, sampler, width, height
    mode: Mode
    image: Any = None  # PIL.Image (RGB) or None
    mask: np.ndarray | None = None  # (H, W) float32 in [0, 1], 1 = regenerate, same size as `image`
    video: list[Any] | None = None  # list of PIL.Image frames
    video_fps: float | None = None
    controls: list[tuple[Control, Any]] = field(default_factory=list)  # (control, PIL.Image map)
    references: list[tuple[Reference, Any]] = field(default_factory=list)  # (reference, PIL.Image)


@dataclass
class Output:
    """One generated item: an image, or a clip (frames, fps, optional mono audio)."""

    kind: Literal["image", "video"]
    image: Any = None  # PIL.Image for kind == "image"
    frames: list[Any] | None = None  # PIL.Image frames for kind == "video"
    fps: float | None = None
    audio: np.ndarray | None = None  # (samples,) float32 in [-1, 1]
    sample_rate: int | None = None
    seed: int | None = None  # the seed this item was drawn with


@dataclass
class Progress:
    """One progress report: which item, which step, and a cheap preview on demand."""

    item: int  # 0-based index of the output being generated
    items: int
    step: int  # 1-based step just finished
    steps: int
    preview: Callable[[], Any] | None = None  # returns a small PIL.Image decoded from the predicted result


ProgressFn = Callable[[Progress], None]


class LoadedModel(Protocol):
    """What every family's loader returns."""

    id: str

    def capabilities(self) -> Capabilities:
        """Modes, conditions and defaults of this model."""
        ...

    def weights_hash(self) -> str:
        """A short content hash of the weights, recorded in every output's recipe."""
        ...

    def generate(self, job: Job, progress: ProgressFn) -> list[Output]:
        """Run the job; call `progress` after every denoising step (it may raise Cancelled)."""
        ...
