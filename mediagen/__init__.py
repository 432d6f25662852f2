"""mediagen: one toolbox for every generative-media mode."""

from __future__ import annotations

__version__ = "0.1.0"

_API = ("Mediagen", "Result", "generate", "t2i", "i2i", "inpaint", "outpaint", "t2v", "i2v", "v2v")


def __getattr__(name: str):
    """Expose the Python API lazily, so `import mediagen` does no work."""
    if name in _API:
        from mediagen import api

        return getattr(api, name)
    if name == "GenerationRequest":
        from mediagen.schema import GenerationRequest

        return GenerationRequest
    raise AttributeError(f"module 'mediagen' has no attribute {name!r}")


__all__ = [*_API, "GenerationRequest", "__version__"]
