"""Model families by name, and loading a model id (built-in name, folder, single file or hub id)."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import MappingProxyType

from mediagen.errors import ModelNotFoundError
from mediagen.model import LoadedModel
from mediagen.settings import Settings

# family name -> "module:function" of its loader; one line per family.
FAMILIES = MappingProxyType({
    "builtin": "mediagen.families.builtin:load",
    "sd15": "mediagen.families.sd15:load",
    "sdxl": "mediagen.families.sdxl:load",
    "sd3": "mediagen.families.sd3:load",
    "flux": "mediagen.families.flux:load",
})

BUILTIN_NAMES = frozenset({"builtin", "builtin-image"})


def _loader(family: str):
    module, func = FAMILIES[family].split(":")
    return getattr(importlib.import_module(module), func)


def family_of(model_id: str) -> str:
    """The family that loads `model_id` (an explicit 'family:source' prefix wins)."""
    if model_id in BUILTIN_NAMES:
        return "builtin"
    prefix, sep, _ = model_id.partition(":")
    if sep and prefix in FAMILIES and not Path(model_id).exists():
        return prefix
    from mediagen.families.detect import detect_family

    return detect_family(model_id)


def load_model(model_id: str | None, settings: Settings) -> LoadedModel:
    """Load a model by id with the settings' device and dtype."""
    model_id = model_id or settings.default_model
    family = family_of(model_id)
    source = model_id
    prefix, sep, rest = model_id.partition(":")
    if sep and prefix == family and not Path(model_id).exists():
        source = rest
    if family not in FAMILIES:
        raise ModelNotFoundError(f"unknown model family {family!r}; families: {', '.join(FAMILIES)}")
    return _loader(family)(source, device=settings.torch_device(), dtype=settings.torch_dtype())


def list_models(settings: Settings) -> list[dict]:
    """Installed models (built-in, files and folders under the models dir) and well-known hub ids."""
    rows = [{"id": "builtin", "family": "builtin", "installed": True, "source": "bundled weights"}]
    if settings.models_dir.is_dir():
        for p in sorted(settings.models_dir.iterdir()):
            if p.is_dir() or p.suffix == ".safetensors":
                try:
                    fam = family_of(str(p))
                except Exception as e:  # an unreadable entry is listed with the reason
                    fam = f"unknown ({e.__class__.__name__})"
                rows.append({"id": str(p), "family": fam, "installed": True, "source": "models dir"})
    for family in FAMILIES:
        if family == "builtin":
            continue
        try:
            catalog = importlib.import_module(f"mediagen.families.{family}").CATALOG
        except (ImportError, AttributeError):
            continue
        for hub_id in catalog:
            rows.append({"id": hub_id, "family": family, "installed": False, "source": "hub (needs network)"})
    return rows
