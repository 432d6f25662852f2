"""Architecture settings of the built-in model (saved beside the weights as config.json)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class AEConfig:
    """A small convolutional autoencoder: image (3, H, W) in [-1, 1] <-> latent (latent_channels, H/f, W/f)."""

    latent_channels: int = 4
    channels: tuple[int, ...] = (32, 64, 128)  # one entry per resolution; f = 2 ** (len(channels) - 1)
    blocks: int = 1  # residual blocks per resolution
    scale: float = 1.0  # latents are multiplied by this to reach unit variance (measured after training)
    shift: float = 0.0  # and this mean is subtracted first

    @property
    def factor(self) -> int:
        return 2 ** (len(self.channels) - 1)


@dataclass(frozen=True)
class UNetConfig:
    """A latent UNet with token cross-attention on text states, predicting rectified-flow velocity."""

    latent_channels: int = 4
    channels: tuple[int, ...] = (64, 128, 192)  # per level; level i works at latent_size / 2**i
    blocks: int = 1  # residual blocks per level on the way down (one more on the way up)
    attention: tuple[bool, ...] = (False, True, True)  # self + cross attention after each block of a level
    head_dim: int = 64
    context_dim: int = 384  # MiniLM token states (384 per text layer)
    context_groups: int = 1  # text layers side by side in the context, each layer-normalised on its own
    time_dim: int = 256
    refiner_layers: int = 0  # trainable self-attention layers over the text tokens before the UNet reads them
    refiner_dim: int = 256  # their width
    inpaint: bool = True  # extra inputs: mask (1) + masked-image latent (latent_channels)
    position: bool = False  # attention blocks also see where each token sits in the image plane

    @property
    def in_channels(self) -> int:
        return self.latent_channels * 2 + 1 if self.inpaint else self.latent_channels


@dataclass(frozen=True)
class ModelConfig:
    """Everything the loader needs to rebuild the model."""

    ae: AEConfig = field(default_factory=AEConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    text_max_tokens: int = 64
    text_layers: tuple[int, ...] = (6,)  # MiniLM hidden states concatenated as the context (6 = last layer)
    default_steps: int = 10  # with guidance 5 as good as 20 steps at guidance 3, at half the time (DESIGN.md)
    default_guidance: float = 5.0
    default_guidance_end: float = 1.0  # share of the steps, from the first, that use guidance
    default_shift: float = 1.0
    default_size: int = 128

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        """Inverse of to_dict; unknown keys are an error."""
        return cls(
            ae=_build(AEConfig, d.get("ae", {})),
            unet=_build(UNetConfig, d.get("unet", {})),
            **{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k not in ("ae", "unet")},
        )


def _build(cls: type, d: dict[str, Any]) -> Any:
    """Dataclass from a dict, turning JSON lists back into tuples."""
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
