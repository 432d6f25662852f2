"""OpenAI-compatible image endpoints under /v1, driven unchanged by the official `openai` client.

Generations are text to image; edits are image to image, or inpainting with a mask whose fully
transparent pixels (alpha 0) mark what to regenerate (OpenAI's convention, the inverse of mediagen's
white = regenerate, converted here); variations re-imagine an image without a prompt. OpenAI model names
run on the server's default model. Besides OpenAI's parameters, mediagen's `seed`, `steps`, `guidance`,
`guidance_end`, `sampler`, `negative_prompt`, `strength`, `mask_blur` and `mask_blend` are accepted (the
client's `extra_body`).
`quality` scales the step count (low 0.5x, high 1.5x). Parameters that cannot be honoured get OpenAI's error shape.
"""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any, Callable

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse
from PIL import Image
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from mediagen.capabilities import Capabilities
from mediagen.errors import RequestError
from mediagen.schema import GenerationRequest
from mediagen.server.files import NotFound
from mediagen.server.jobs import Server
from mediagen.server.routing import route
from mediagen.server.security import sign_path
from mediagen.server.uploads import decode_image, store_image

OPENAI_MODELS = frozenset({"dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5",
                           "gpt-image-2", "chatgpt-image-latest"})
URL_DEFAULT_MODELS = frozenset({"dall-e-2", "dall-e-3"})  # these answered with URLs by default
EXTENSIONS = ("seed", "steps", "guidance", "guidance_end", "sampler", "negative_prompt", "strength", "mask_blur",
              "mask_blend")
IGNORED = ("user", "moderation", "safety_identifier", "input_fidelity", "output_compression")
QUALITY_STEPS = {"low": 0.5, "medium": 1.0, "standard": 1.0, "auto": 1.0, "high": 1.5, "hd": 1.5}
MAX_N = 10
SIZE = re.compile(r"(\d{1,5})x(\d{1,5})")



class OpenAIError(Exception):
    """An error answered in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error", headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"message": self.message, "type": self.kind, "param": self.param,
                                       "code": self.code}}, status_code=self.status, headers=self.headers)


def _server(request: Request) -> Server:
    return request.app.state.server


def _check_known(params: dict[str, Any], handled: tuple[str, ...]) -> None:
    for key in params:
        if key not in handled and key not in EXTENSIONS and key not in IGNORED:
            raise OpenAIError(400, f"Unknown parameter: '{key}'.", key, "unknown_parameter")


def _int(params: dict[str, Any], key: str, default: int | None) -> int | None:
    v = params.get(key)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except (TypeError, ValueError):
        raise OpenAIError(400, f"Invalid type for '{key}': expected an integer, but got {v!r} instead.", key,
                          "invalid_type") from None


async def _model(s: Server, params: dict[str, Any]) -> tuple[str, Capabilities, str | None]:
    """(mediagen model id, its capabilities, the OpenAI name asked for)."""
    name = params.get("model") or None
    model_id = s.config.default_model if name is None or name in OPENAI_MODELS else name
    try:
        model_id = await s.catalog.resolve(model_id)
    except NotFound:
        raise OpenAIError(404, f"The model '{name}' does not exist or you do not have access to it.", "model",
                          "model_not_found") from None
    return model_id, Capabilities(**await s.catalog.capabilities(model_id)), name


def _size(params: dict[str, Any], caps: Capabilities) -> tuple[int, int] | None:
    """(width, height) from 'WxH', or None for 'auto' / absent."""
    v = params.get("size")
    if v in (None, "", "auto"):
        return None
    m = SIZE.fullmatch(str(v))
    if not m:
        raise OpenAIError(400, f"Invalid value for 'size': {v!r}. Expected 'WIDTHxHEIGHT' or 'auto'.", "size",
                          "invalid_value")
    w, h = int(m.group(1)), int(m.group(2))
    for side in (w, h):
        if side % caps.size_multiple or not caps.min_size <= side <= caps.max_size:
            raise OpenAIError(400, f"Invalid value for 'size': {v!r}. Model '{caps.model}' makes sides that are "
                                   f"multiples of {caps.size_multiple} from {caps.min_size} to {caps.max_size} "
                                   f"(e.g. '{caps.default_width}x{caps.default_height}').", "size", "invalid_value")
    return w, h


def _common(params: dict[str, Any], caps: Capabilities, name: str | None) -> dict[str, Any]:
    """Checks shared by every endpoint; the request fields they set, plus the response format."""
    n = _int(params, "n", 1)
    if n < 1 or n > MAX_N:
        raise OpenAIError(400, f"Invalid 'n': expected a value from 1 to {MAX_N}, but got {n} instead.", "n",
                          "integer_above_max_value" if n > MAX_N else "integer_below_min_value")
    fmt = params.get("response_format") or ("url" if name in URL_DEFAULT_MODELS else "b64_json")
    if fmt not in ("url", "b64_json"):
        raise OpenAIError(400, f"Invalid value: '{fmt}'. Supported values are: 'url' and 'b64_json'.",
                          "response_format", "invalid_value")
    if params.get("stream") not in (None, False, "false", "False"):
        raise OpenAIError(400, "Streaming is not supported by this server: poll /api/jobs for progress instead.",
                          "stream", "unsupported_value")
    if _int(params, "partial_images", 0):
        raise OpenAIError(400, "Partial images need streaming, which this server does not support.",
                          "partial_images", "unsupported_value")
    if params.get("background") not in (None, "auto", "opaque"):
        raise OpenAIError(400, "Transparent backgrounds are not supported: use 'opaque' or 'auto'.", "background",
                          "unsupported_value")
    if params.get("output_format") not in (None, "png"):
        raise OpenAIError(400, f"Invalid value: '{params['output_format']}'. This server writes 'png' only.",
                          "output_format", "unsupported_value")
    if params.get("style") is not None:
        raise OpenAIError(400, "The 'style' parameter is not supported: describe the style in the prompt.",
                          "style", "unsupported_parameter")
    quality = params.get("quality") or "auto"
    if quality not in QUALITY_STEPS:
        raise OpenAIError(400, f"Invalid value: '{quality}'. Supported values are: {', '.join(QUALITY_STEPS)}.",
                          "quality", "invalid_value")
    fields: dict[str, Any] = {"n": n}
    for key in EXTENSIONS:
        if params.get(key) not in (None, ""):
            fields[key] = params[key]
    if "steps" not in fields and QUALITY_STEPS[quality] != 1.0:
        fields["steps"] = max(1, round(caps.default_steps * QUALITY_STEPS[quality]))
    return {"fields": fields, "format": fmt}


def _request(fields: dict[str, Any]) -> GenerationRequest:
    try:
        return GenerationRequest(**fields)
    except ValidationError as e:
        err = e.errors()[0]
        param = ".".join(str(x) for x in err["loc"]) or None
        raise OpenAIError(400, f"Invalid value for '{param}': {err['msg']}", param, "invalid_value") from None


async def _run(request: Request, s: Server, req: GenerationRequest, fmt: str, source: str) -> JSONResponse:
    """Queue, wait for the result (a client that goes away cancels it), answer in OpenAI's shape."""
    try:
        job = await s.submit(req, source)
    except RequestError as e:
        raise OpenAIError(400, str(e), None, "invalid_request") from None
    job = await s.wait(job["id"], request.is_disconnected)
    if job is None:
        raise OpenAIError(499, "the client closed the request; its job was cancelled", None, "client_closed")
    if job["status"] != "succeeded":
        status = 400 if job["error_code"] == "invalid_request" else 500
        raise OpenAIError(status, job["error"] or f"the job {job['status']}", None, job["error_code"],
                          "invalid_request_error" if status == 400 else "server_error")
    outputs = s.store.outputs([job["id"]])[job["id"]]
    data = []
    base = str(request.base_url).rstrip("/")
    for o in outputs:
        if fmt == "b64_json":
            blob = await asyncio.to_thread((s.data.root / o["path"]).read_bytes)
            data.append({"b64_json": base64.b64encode(blob).decode("ascii")})
        else:
            data.append({"url": base + sign_path(s.secret, f"/api/jobs/{job['id']}/outputs/{o['idx']}")})
    size = f"{outputs[0]['width']}x{outputs[0]['height']}" if outputs else None
    return JSONResponse({"created": int(job["created"]), "data": data, "size": size, "output_format": "png",
                         "background": "opaque"})


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise OpenAIError(400, "We could not parse the JSON body of your request.", None, "invalid_json") from None
    if not isinstance(body, dict):
        raise OpenAIError(400, "The request body must be a JSON object.", None, "invalid_json")
    return {k: v for k, v in body.items() if v is not None}


@route("POST", "/v1/images/generations", tags=["openai"])
async def generations(request: Request) -> JSONResponse:
    """Text to image (OpenAI `images.generate`)."""
    s = _server(request)
    params = await _json_body(request)
    _check_known(params, ("prompt", "model", "n", "size", "response_format", "quality", "style", "background",
                          "output_format", "partial_images", "stream"))
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise OpenAIError(400, "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    model_id, caps, name = await _model(s, params)
    common = _common(params, caps, name)
    size = _size(params, caps)
    fields = {**common["fields"], "prompt": prompt, "model": model_id}
    if size:
        fields["width"], fields["height"] = size
    return await _run(request, s, _request(fields), common["format"], "openai")


async def _form(request: Request) -> tuple[dict[str, Any], dict[str, list[UploadFile]]]:
    """Multipart fields and files (a repeated field such as image[] becomes a list)."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise OpenAIError(400, "This endpoint takes multipart/form-data (image files and fields).", None,
                          "invalid_content_type")
    form = await request.form(max_files=4, max_fields=64)
    params: dict[str, Any] = {}
    files: dict[str, list[UploadFile]] = {}
    for key, value in form.multi_items():
        key = key.removesuffix("[]")
        if isinstance(value, UploadFile):
            files.setdefault(key, []).append(value)
        else:
            params[key] = value
    return params, files


async def _image(s: Server, files: dict[str, list[UploadFile]], key: str, required: bool) -> Image.Image | None:
    got = files.get(key) or []
    if not got:
        if required:
            raise OpenAIError(400, f"Missing required parameter: '{key}'.", key, "missing_required_parameter")
        return None
    if len(got) > 1:
        raise OpenAIError(400, f"Only one '{key}' file is supported by this server, got {len(got)}.", key,
                          "unsupported_value")
    data = await got[0].read(s.config.max_upload_bytes + 1)
    try:
        return await asyncio.to_thread(decode_image, data, s.limits, key)
    except RequestError as e:
        raise OpenAIError(400, f"Invalid '{key}' file: {e}", key, "invalid_image") from None


def _fit(im: Image.Image, caps: Capabilities, size: tuple[int, int] | None,
         resample: Image.Resampling = Image.Resampling.LANCZOS) -> Image.Image:
    """The image at `size`, or at the nearest size the model accepts (keeping the aspect ratio)."""
    if size is None:
        w, h = im.size
        scale = min(1.0, caps.max_size / max(w, h))
        scale = max(scale, caps.min_size / min(w, h))
        m = caps.size_multiple
        size = tuple(min(caps.max_size, max(caps.min_size, int(round(v * scale / m)) * m)) for v in (w, h))
    return im if im.size == size else im.resize(size, resample)


def _store_inputs(s: Server, caps: Capabilities, size: tuple[int, int] | None, image: Image.Image,
                  mask: Image.Image | None) -> tuple[str, str | None]:
    """Upload refs of the (resized) image and of the mediagen mask made from an OpenAI mask."""
    im = _fit(image.convert("RGB"), caps, size)
    mask_ref = None
    if mask is not None:
        alpha = np.asarray(mask.getchannel("A"))  # (H, W) uint8
        regen = Image.fromarray(np.where(alpha == 0, 255, 0).astype(np.uint8), "L")  # white = regenerate
        mask_ref = store_image(s.data, _fit(regen, caps, im.size, Image.Resampling.NEAREST)).ref
    return store_image(s.data, im).ref, mask_ref


@route("POST", "/v1/images/edits", tags=["openai"])
async def edits(request: Request) -> JSONResponse:
    """Image to image; with `mask`, inpainting where the mask is fully transparent (OpenAI `images.edit`)."""
    s = _server(request)
    params, files = await _form(request)
    _check_known({**params, **files}, ("image", "mask", "prompt", "model", "n", "size", "response_format",
                                       "quality", "background", "output_format", "partial_images", "stream"))
    prompt = params.get("prompt")
    if not prompt or not prompt.strip():
        raise OpenAIError(400, "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    model_id, caps, name = await _model(s, params)
    common = _common(params, caps, name)
    size = _size(params, caps)
    image = await _image(s, files, "image", True)
    mask = await _image(s, files, "mask", False)
    if mask is not None:
        if "A" not in mask.getbands():
            raise OpenAIError(400, "Invalid mask image format - the mask needs an alpha channel: its fully "
                                   "transparent pixels mark what to regenerate.", "mask", "invalid_image_format")
        if mask.size != image.size:
            raise OpenAIError(400, f"The mask ({mask.size[0]}x{mask.size[1]}) and the image ({image.size[0]}x"
                                   f"{image.size[1]}) must have the same dimensions.", "mask", "invalid_image_format")
    image_ref, mask_ref = await asyncio.to_thread(_store_inputs, s, caps, size, image, mask)
    fields = {**common["fields"], "prompt": prompt, "model": model_id, "image": image_ref}
    if mask_ref:
        fields["mask"] = mask_ref
    return await _run(request, s, _request(fields), common["format"], "openai")


@route("POST", "/v1/images/variations", tags=["openai"])
async def variations(request: Request) -> JSONResponse:
    """Variations of an image: image to image without a prompt (OpenAI `images.create_variation`)."""
    s = _server(request)
    params, files = await _form(request)
    _check_known({**params, **files}, ("image", "model", "n", "size", "response_format"))
    model_id, caps, name = await _model(s, params)
    common = _common(params, caps, name)
    image = await _image(s, files, "image", True)
    image_ref, _ = await asyncio.to_thread(_store_inputs, s, caps, _size(params, caps), image, None)
    fields = {**common["fields"], "prompt": "", "model": model_id, "image": image_ref}
    return await _run(request, s, _request(fields), common["format"], "openai")


def _model_object(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "object": "model", "created": 0, "owned_by": f"mediagen:{row['family']}"}


@route("GET", "/v1/models", tags=["openai"])
async def list_models(request: Request) -> dict[str, Any]:
    """Models this server offers (OpenAI `models.list`)."""
    rows = await _server(request).catalog.models()
    return {"object": "list", "data": [_model_object(r) for r in rows]}


@route("GET", "/v1/models/{model_id:path}", tags=["openai"])
async def retrieve_model(model_id: str, request: Request) -> dict[str, Any]:
    """One model (OpenAI `models.retrieve`)."""
    for r in await _server(request).catalog.models():
        if r["id"] == model_id:
            return _model_object(r)
    raise OpenAIError(404, f"The model '{model_id}' does not exist", "model", "model_not_found")


def install_handlers(add: Callable[[type, Callable], None]) -> None:
    """Register the OpenAIError handler on an app (`app.add_exception_handler`)."""

    async def handle(_request: Request, exc: OpenAIError) -> JSONResponse:
        return exc.response()

    add(OpenAIError, handle)
