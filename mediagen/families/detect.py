"""Pick a model family from a diffusers folder, a single-file checkpoint's key names, or a hub id."""

from __future__ import annotations

import json
import re
from pathlib import Path

from mediagen.errors import ModelNotFoundError, RequestError, UnsupportedError
from mediagen.safeload import safetensors_keys

FAMILIES = ("sd15", "sdxl", "sd3", "flux")

PIPELINE_FAMILIES = {
    "StableDiffusionPipeline": "sd15",
    "StableDiffusionImg2ImgPipeline": "sd15",
    "StableDiffusionInpaintPipeline": "sd15",
    "StableDiffusionXLPipeline": "sdxl",
    "StableDiffusionXLImg2ImgPipeline": "sdxl",
    "StableDiffusionXLInpaintPipeline": "sdxl",
    "StableDiffusion3Pipeline": "sd3",
    "StableDiffusion3Img2ImgPipeline": "sd3",
    "StableDiffusion3InpaintPipeline": "sd3",
    "FluxPipeline": "flux",
    "FluxImg2ImgPipeline": "flux",
    "FluxInpaintPipeline": "flux",
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

# Substrings of hub names that identify a family, most specific first.
_NAME_HINTS = (
    ("flux", "flux"),
    ("stable-diffusion-3", "sd3"),
    ("sd3", "sd3"),
    ("xl", "sdxl"),
    ("stable-diffusion-v1", "sd15"),
    ("stable-diffusion-2", "sd15"),
    ("stable-diffusion-inpainting", "sd15"),
    ("sd15", "sd15"),
    ("sd-1", "sd15"),
    ("v1-5", "sd15"),
)


def catalog() -> dict[str, str]:
    """Every well-known hub id mapped to its family."""
    import importlib

    out: dict[str, str] = {}
    for fam in FAMILIES:
        for hub_id in importlib.import_module(f"mediagen.families.{fam}").CATALOG:
            out[hub_id] = fam
    return out


def detect_family(source: str) -> str:
    """Family name ('sd15', 'sdxl', 'sd3', 'flux') of a diffusers folder, .safetensors file or hub id."""
    p = Path(source).expanduser()
    if p.is_dir():
        return family_of_folder(p)
    if p.is_file():
        return family_of_keys(safetensors_keys(p), where=str(p))
    if _HUB_ID.match(source):
        return family_of_hub_id(source)
    raise ModelNotFoundError(
        f"model {source!r} is neither a folder, a file nor a hub id (org/name): give a diffusers folder "
        "(with model_index.json), a .safetensors checkpoint, or a hub id such as "
        "stable-diffusion-v1-5/stable-diffusion-v1-5"
    )


def family_of_folder(folder: Path) -> str:
    """Family of a diffusers folder, from model_index.json's pipeline class."""
    index = folder / "model_index.json"
    if not index.is_file():
        hint = ""
        singles = sorted(folder.glob("*.safetensors"))
        if singles:
            hint = f" (to load a checkpoint file, point at it directly, e.g. {singles[0]})"
        raise ModelNotFoundError(f"{folder} has no model_index.json, so it is not a diffusers pipeline folder{hint}")
    try:
        cls = json.loads(index.read_text())["_class_name"]
    except (ValueError, KeyError) as e:
        raise ModelNotFoundError(f"{index} is not a valid diffusers model index ({e!r})") from None
    fam = PIPELINE_FAMILIES.get(cls)
    if fam is None:
        raise UnsupportedError(
            f"{folder} holds a {cls}, which this toolbox does not run; supported pipelines: "
            f"{', '.join(sorted(PIPELINE_FAMILIES))}"
        )
    return fam


def family_of_keys(keys: list[str], where: str = "checkpoint") -> str:
    """Family of a single-file checkpoint from its tensor names (original, non-diffusers layout)."""
    ks = [k.removeprefix("model.diffusion_model.") for k in keys]
    if any(k.startswith("double_blocks.") for k in ks):
        return "flux"
    if any(k.startswith("joint_blocks.") for k in ks):
        return "sd3"
    if any(k.startswith("conditioner.embedders.") for k in keys):
        return "sdxl"
    if any(k.startswith("model.diffusion_model.input_blocks.") for k in keys):
        if any(k.startswith("model.diffusion_model.label_emb.") for k in keys):
            return "sdxl"  # a UNet-only SDXL checkpoint carries the added-conditioning MLP
        return "sd15"
    if any(("lora_down" in k or ".lora_A." in k or ".lora.down." in k or k.startswith("lora_")) for k in keys):
        raise RequestError(f"{where} is a LoRA, not a base model: pass it as a LoRA (--lora) on top of a model")
    if any(k.startswith(("down_blocks.", "transformer_blocks.", "encoder.down_blocks.")) for k in keys):
        raise ModelNotFoundError(
            f"{where} holds one diffusers component, not a whole model: point at the diffusers folder that "
            "contains it (the one with model_index.json)"
        )
    sample = ", ".join(sorted(keys)[:5]) or "no tensors"
    raise UnsupportedError(
        f"{where}: unrecognised checkpoint layout (first keys: {sample}); supported single files are SD 1.x/2.x, "
        "SDXL, SD3 and FLUX.1 checkpoints in their original layout"
    )


def family_of_hub_id(hub_id: str) -> str:
    """Family of a hub id: the catalog, then name hints, then the hub's model_index.json (cache or network)."""
    known = catalog().get(hub_id)
    if known:
        return known
    low = hub_id.lower()
    for hint, fam in _NAME_HINTS:
        if hint in low:
            return fam
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(hub_id, "model_index.json", local_files_only=True)
    except Exception:  # noqa: BLE001 - any cache miss (missing, partial, unreadable) means "ask the hub"
        problem = hub_problem()
        if problem:
            raise hub_unreachable(hub_id, problem) from None
        try:
            path = hf_hub_download(hub_id, "model_index.json")
        except Exception as e:  # noqa: BLE001 - network, auth and not-found errors all mean "cannot fetch"
            raise hub_unreachable(hub_id, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    return family_of_folder(Path(path).parent)


def hub_problem(timeout: float = 3.0) -> str | None:
    """Why the model hub cannot be reached right now (offline mode, no DNS, no connection), or None."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as e:
        return f"cannot connect to {host}:{port} ({e})"


def hub_unreachable(hub_id: str, cause: str) -> ModelNotFoundError:
    """The error for a hub id that cannot be fetched (offline, private, or misspelt)."""
    return ModelNotFoundError(
        f"cannot fetch {hub_id!r} from the model hub ({cause}); "
        "the hub is unreachable or the id is wrong. Point --model at a local diffusers folder (with "
        "model_index.json) or a .safetensors checkpoint instead, e.g. --model ~/models/sd15/ or "
        "--model ~/models/dreamshaper_8.safetensors"
    )
