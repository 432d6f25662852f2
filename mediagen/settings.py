"""Settings, read once at the edge (CLI, server start-up) and passed down explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 dot products (AMX-BF16 or AVX512-BF16), where bf16 beats fp32."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool({"amx_bf16", "avx512_bf16"} & set(line.split()))
    except OSError:
        pass
    return False


@dataclass(frozen=True)
class Settings:
    """Where mediagen keeps things and how it computes."""

    home: Path = field(default_factory=lambda: Path.home() / ".mediagen")
    device: str = "auto"  # "auto" picks cuda when available, else cpu (resolved when a model loads)
    dtype: str = "auto"  # "auto" | "bf16" | "fp16" | "fp32"
    default_model: str = "builtin"
    offline: bool = False

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def subjects_dir(self) -> Path:
        return self.home / "subjects"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from MEDIAGEN_* environment variables."""
        env = os.environ if env is None else env
        home = Path(env["MEDIAGEN_HOME"]) if env.get("MEDIAGEN_HOME") else Path.home() / ".mediagen"
        device = env.get("MEDIAGEN_DEVICE") or "auto"
        return cls(
            home=home,
            device=device,
            dtype=env.get("MEDIAGEN_DTYPE", "auto"),
            default_model=env.get("MEDIAGEN_MODEL", "builtin"),
            offline=env.get("HF_HUB_OFFLINE", "") not in ("", "0"),
        )

    def torch_device(self) -> str:
        """The device to compute on, with "auto" resolved (this imports torch)."""
        return _default_device() if self.device == "auto" else self.device

    def torch_dtype(self):
        """The compute dtype: bf16 on GPUs and on CPUs with native bf16, fp32 on other CPUs, unless set explicitly."""
        import torch

        table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
        if self.dtype in table:
            return table[self.dtype]
        if self.torch_device().startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def _default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"
