"""Inputs arriving over HTTP: decoded under byte, pixel and side limits, re-encoded as PNG, stored by hash.

Re-encoding drops whatever else a file carried (metadata, extra frames, trailing bytes); the size is
checked from the header before any pixel is decoded, so decompression bombs are refused cheaply.
A request may only name inputs as data: URIs or as references returned by POST /api/uploads: no
request string is ever read as a server path or fetched as a URL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import urllib.parse
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from mediagen.errors import RequestError
from mediagen.schema import Control, GenerationRequest, Lora, Reference
from mediagen.server.files import DataDir, atomic_write_bytes, is_upload_ref

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
SUBJECT_NAME = re.compile(r"[A-Za-z0-9][\w.-]{0,63}")
LORA_NAME = re.compile(r"[\w][\w.-]{0,127}\.safetensors")


class TooLarge(RequestError):
    """An upload is over the byte limit (HTTP 413)."""


@dataclass(frozen=True)
class Limits:
    """What one uploaded input may be."""

    max_bytes: int
    max_pixels: int
    max_side: int


@dataclass(frozen=True)
class Upload:
    """A stored input: its reference (what requests name), size and pixel mode."""

    ref: str
    width: int
    height: int
    mode: str
    bytes: int


def decode_data_uri(uri: str, max_bytes: int, what: str = "input") -> bytes:
    """The bytes of a data: URI, refusing one whose payload is over max_bytes before decoding it."""
    head, sep, payload = uri.partition(",")
    if not uri.startswith("data:") or not sep:
        raise RequestError(f"the {what} is not a data: URI: expected 'data:image/png;base64,<data>'")
    if head.endswith(";base64"):
        if len(payload) > (max_bytes * 4) // 3 + 4:
            raise TooLarge(f"the {what} is over the {max_bytes // 2**20} MiB upload limit")
        try:
            return base64.b64decode(payload.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(f"the {what} data: URI is not valid base64") from None
    data = urllib.parse.unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise TooLarge(f"the {what} is over the {max_bytes // 2**20} MiB upload limit")
    return data


def _normalise(im: Image.Image) -> Image.Image:
    """A PNG-friendly mode: L and LA (masks), RGB and RGBA kept; anything else converted."""
    if im.mode in ("L", "LA", "RGB", "RGBA"):
        return im
    if im.mode == "1":
        return im.convert("L")
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(im).astype(np.float64)  # (H, W)
        top = 65535.0 if arr.max() > 255 else 255.0
        return Image.fromarray((np.clip(arr / top, 0, 1) * 255).round().astype(np.uint8), "L")
    if im.mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    return im.convert("RGBA" if "A" in im.getbands() else "RGB")


def decode_image(data: bytes, limits: Limits, what: str = "image") -> Image.Image:
    """Decode an uploaded image (first frame) under the limits; RequestError naming the problem otherwise."""
    if len(data) > limits.max_bytes:
        raise TooLarge(f"the {what} is {len(data)} bytes, over the {limits.max_bytes // 2**20} MiB upload limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise RequestError(f"the {what} declares a huge size, refused as a decompression bomb ({e})") from None
    except (OSError, SyntaxError, ValueError):
        raise RequestError(f"the {what} is not an image in a supported format (PNG, JPEG, WebP, GIF, BMP)") from None
    w, h = im.size
    if w * h > limits.max_pixels or max(w, h) > limits.max_side or min(w, h) < 1:
        raise RequestError(
            f"the {what} is {w}x{h}; uploads are limited to {limits.max_pixels / 1e6:.1f} MP and "
            f"{limits.max_side} pixels a side: downscale it first")
    try:
        im.load()
        im = ImageOps.exif_transpose(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise RequestError(f"the {what} is damaged or truncated ({e}): re-export it") from None
    return _normalise(im)


def store_image(data_dir: DataDir, im: Image.Image) -> Upload:
    """Re-encode an image as PNG under uploads/<sha256>.png (once per content) and describe it."""
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=6)
    blob = buf.getvalue()
    ref = f"uploads/{hashlib.sha256(blob).hexdigest()}.png"
    path = data_dir.root / ref
    if not path.is_file():
        atomic_write_bytes(path, blob)
    return Upload(ref, im.size[0], im.size[1], im.mode, len(blob))


def store_upload(data_dir: DataDir, data: bytes, limits: Limits, what: str = "image") -> Upload:
    """Decode, check and store uploaded bytes."""
    return store_image(data_dir, decode_image(data, limits, what))


def _input(data_dir: DataDir, value: Any, limits: Limits, where: str) -> str:
    """An input value as an upload reference: data: URIs are stored, references checked, all else refused."""
    if is_upload_ref(value):
        data_dir.upload_path(value)
        return value
    if isinstance(value, str) and value.startswith("data:"):
        if where == "video":
            raise RequestError("video inputs over HTTP are not accepted by this server version: "
                               "run v2v with the command line (`mediagen v2v --video FILE`)")
        return store_upload(data_dir, decode_data_uri(value, limits.max_bytes, where), limits, where).ref
    raise RequestError(
        f"{where}: over HTTP an input is a data: URI or an upload reference (uploads/<sha256>.png from "
        "POST /api/uploads); file paths and URLs are not read")


def localise_request(req: GenerationRequest, data_dir: DataDir, limits: Limits,
                     loras_dir: Path) -> GenerationRequest:
    """The request with every input stored under the data dir and named by reference; bad names refused."""
    upd: dict[str, Any] = {}
    for name in ("image", "mask", "video"):
        value = getattr(req, name)
        if value is not None:
            upd[name] = _input(data_dir, value, limits, name)
    if req.controls:
        upd["controls"] = [Control(**{**c.model_dump(), "image": _input(data_dir, c.image, limits,
                                                                         f"controls[{i}].image")})
                           for i, c in enumerate(req.controls)]
    if req.references:
        upd["references"] = [Reference(**{**r.model_dump(), "image": _input(data_dir, r.image, limits,
                                                                             f"references[{i}].image")})
                             for i, r in enumerate(req.references)]
    if req.loras:
        upd["loras"] = [Lora(path=str(_lora_path(lo.path, loras_dir)), weight=lo.weight) for lo in req.loras]
    if req.subject is not None and not SUBJECT_NAME.fullmatch(req.subject):
        raise RequestError(f"subject {req.subject!r}: a subject is named by letters, digits, '.', '_' and '-'")
    return req.model_copy(update=upd)


def _lora_path(name: str, loras_dir: Path) -> Path:
    """A LoRA named by its file name in the server's LoRA folder (never an arbitrary path)."""
    if not LORA_NAME.fullmatch(name or ""):
        raise RequestError(f"LoRA {name!r}: over HTTP a LoRA is the file name of a .safetensors file in {loras_dir}")
    path = (loras_dir / name).resolve()
    if not path.is_relative_to(loras_dir.resolve()) or not path.is_file():
        raise RequestError(f"LoRA {name!r} is not in {loras_dir}: copy it there first")
    return path
