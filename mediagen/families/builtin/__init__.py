"""The built-in model family: a small text-to-image model trained on mediagen's own procedural world.

One latent UNet (with inpainting channels) does text-to-image, image-to-image, inpainting and outpainting;
it ships inside the package and runs on a CPU in well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BUILTIN_SOURCES = frozenset({"", "builtin", "builtin-image"})


def load(source: str = "builtin", *, device: str = "cpu", dtype: Any = None):
    """Load the shipped weights ("builtin") or a folder exported by `mediagen.families.builtin.export`."""
    from mediagen.families.builtin.model import load_folder, weights_dir

    if source in BUILTIN_SOURCES:
        return load_folder(weights_dir(), model_id="builtin", device=device, dtype=dtype)
    return load_folder(Path(source).expanduser(), model_id=source, device=device, dtype=dtype)
