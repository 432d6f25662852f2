"""Name the colour of rendered pixels: nearest palette colour under an unknown shading factor."""

from __future__ import annotations

import numpy as np

from mediagen.world.spec import COLOR_RGB

SHADING_RANGE = (0.45, 1.15)  # brightness factors the renderer applies to an albedo


def pixel_colors(pixels: np.ndarray) -> np.ndarray:
    """Palette index (N,) of each pixel (N, 3): nearest k * palette colour with k in SHADING_RANGE."""
    p = np.asarray(pixels, dtype=np.float64).reshape(-1, 3)  # (N, 3)
    pal = np.array(list(COLOR_RGB.values()), dtype=np.float64)  # (C, 3)
    k = np.clip(p @ pal.T / np.einsum("ci,ci->c", pal, pal), *SHADING_RANGE)  # (N, C)
    err = np.linalg.norm(p[:, None, :] - k[..., None] * pal[None], axis=2)  # (N, C)
    return np.argmin(err, axis=1)


def classify_color(pixels: np.ndarray) -> str:
    """Palette name for the pixels (N, 3) uint8 of one object: the most frequent per-pixel colour."""
    idx = pixel_colors(pixels)
    return list(COLOR_RGB)[int(np.bincount(idx, minlength=len(COLOR_RGB)).argmax())]
