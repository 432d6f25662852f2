"""Weights load from safetensors only: formats are sniffed from content, pickles are refused unexecuted."""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Literal

from mediagen.errors import UnsafeWeightsError

Format = Literal["safetensors", "pickle-zip", "pickle", "gguf", "unknown"]

_MAX_HEADER = 100 * 1024 * 1024  # safetensors caps its JSON header at 100 MB
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".pkl", ".gguf", ".msgpack", ".h5", ".onnx")
_PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")


def sniff_format(path: str | os.PathLike) -> Format:
    """Name a weights file's format from its first bytes (never from its extension)."""
    p = Path(path)
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(9)
        if len(head) >= 9:
            (n,) = struct.unpack("<Q", head[:8])
            if 2 <= n <= min(_MAX_HEADER, size - 8) and head[8:9] == b"{":
                f.seek(8)
                try:
                    json.loads(f.read(n))
                    return "safetensors"
                except ValueError:
                    pass
    if head[:4] == b"GGUF":
        return "gguf"
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(p) as z:
                if any(name == "data.pkl" or name.endswith("/data.pkl") for name in z.namelist()):
                    return "pickle-zip"
        except zipfile.BadZipFile:
            return "unknown"
        return "unknown"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    return "unknown"


def conversion_hint(path: str | os.PathLike) -> str:
    """How to turn a pickle checkpoint into safetensors, for error messages."""
    out = Path(path).with_suffix(".safetensors")
    return (
        f"convert it once with `python -m mediagen.convert {path} {out}` (loads tensors only, "
        "torch.load(weights_only=True), no code runs), or download the .safetensors release of the model"
    )


def refuse_unless_safetensors(path: str | os.PathLike) -> None:
    """Raise UnsafeWeightsError unless `path` holds safetensors content."""
    fmt = sniff_format(path)
    if fmt == "safetensors":
        return
    if fmt in ("pickle", "pickle-zip"):
        raise UnsafeWeightsError(
            f"{path} is a pickle checkpoint ({fmt}); pickles can run arbitrary code when loaded, so mediagen "
            f"refuses them: {conversion_hint(path)}"
        )
    if fmt == "gguf":
        raise UnsafeWeightsError(
            f"{path} is a GGUF file; mediagen loads safetensors weights only: use the model's .safetensors release"
        )
    raise UnsafeWeightsError(
        f"{path} is not a safetensors file (unrecognised content); give a .safetensors checkpoint or a diffusers folder"
    )


def read_safetensors_header(path: str | os.PathLike) -> dict:
    """The JSON header of a safetensors file (tensor names, dtypes, shapes; '__metadata__'), no tensor data."""
    refuse_unless_safetensors(path)
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def safetensors_keys(path: str | os.PathLike) -> list[str]:
    """Tensor names stored in a safetensors file."""
    return [k for k in read_safetensors_header(path) if k != "__metadata__"]


def load_safetensors(path: str | os.PathLike, device: str = "cpu") -> dict:
    """Load a state dict from a safetensors file; anything else raises UnsafeWeightsError."""
    refuse_unless_safetensors(path)
    from safetensors.torch import load_file

    return load_file(str(path), device=device)


def check_diffusers_folder(folder: str | os.PathLike) -> None:
    """Refuse a diffusers folder whose components carry weights only as pickles, or disguised pickles."""
    root = Path(folder)
    index = root / "model_index.json"
    try:
        components = [k for k, v in json.loads(index.read_text()).items() if not k.startswith("_") and v]
    except (OSError, ValueError) as e:
        raise UnsafeWeightsError(f"{root} is not a diffusers folder: cannot read {index} ({e})") from None
    for name in components:
        sub = root / name
        if not sub.is_dir():
            continue
        files = [f for f in sub.iterdir() if f.is_file() and f.name.endswith(WEIGHT_SUFFIXES)]
        safe = [f for f in files if f.name.endswith(".safetensors")]
        for f in safe:
            refuse_unless_safetensors(f)
        if files and not safe:
            pickles = [f.name for f in files if f.name.endswith(_PICKLE_SUFFIXES)]
            raise UnsafeWeightsError(
                f"{sub} holds weights only as {', '.join(sorted(pickles)) or 'non-safetensors files'}; mediagen "
                f"loads safetensors only: {conversion_hint(sub / (pickles[0] if pickles else 'weights.bin'))}, "
                "or download the model's safetensors variant"
            )


def convert_to_safetensors(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Convert a pickle checkpoint to safetensors with torch.load(weights_only=True); returns the tensor count."""
    import torch
    from safetensors.torch import save_file

    fmt = sniff_format(src)
    if fmt == "safetensors":
        raise UnsafeWeightsError(f"{src} is already safetensors; nothing to convert")
    if fmt not in ("pickle", "pickle-zip"):
        raise UnsafeWeightsError(f"{src} is not a torch checkpoint ({fmt}); only pickle checkpoints can be converted")
    try:
        obj = torch.load(str(src), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - the restricted unpickler refuses anything that is not plain tensors/containers
        raise UnsafeWeightsError(
            f"{src} holds more than plain tensors (the restricted loader refused it: {e}); it is not converted"
        ) from None
    while isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise UnsafeWeightsError(f"{src} does not hold a state dict (found {type(obj).__name__})")
    tensors: dict = {}
    seen: set[tuple[int, int]] = set()
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            continue
        key = (v.untyped_storage().data_ptr(), v.storage_offset())
        v = v.contiguous()
        if key in seen or v.untyped_storage().nbytes() != v.numel() * v.element_size():
            v = v.clone()  # safetensors stores no shared or partial storages
        seen.add(key)
        tensors[str(k)] = v
    if not tensors:
        raise UnsafeWeightsError(f"{src} holds no tensors")
    dst = Path(dst)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=dst.name, suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"converted_from": Path(src).name})
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return len(tensors)
