"""Recipes: everything needed to regenerate an output, embedded in the file it describes.

A recipe holds the full request, the model and a hash of its weights, the seed, the version and a
SHA-256 of every input, so `mediagen rerun` can refuse inputs that went missing or changed. The same
recipe is also rendered as an A1111-style `parameters` text that other tools read.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any, Iterator, Mapping

from pydantic import ValidationError

from mediagen.errors import RequestError
from mediagen.schema import GenerationRequest, Mode, media_digest

RECIPE_FORMAT = 1

# mediagen sampler names -> the names A1111 prints (unknown names are written as they are)
_A1111_SAMPLERS = (
    ("euler", "Euler"),
    ("euler_a", "Euler a"),
    ("euler_ancestral", "Euler a"),
    ("heun", "Heun"),
    ("dpm_2", "DPM2"),
    ("dpm_2_a", "DPM2 a"),
    ("dpmpp_2s_a", "DPM++ 2S a"),
    ("dpmpp_2m", "DPM++ 2M"),
    ("dpmpp_sde", "DPM++ SDE"),
    ("dpmpp_2m_sde", "DPM++ 2M SDE"),
    ("dpmpp_3m_sde", "DPM++ 3M SDE"),
    ("lms", "LMS"),
    ("ddim", "DDIM"),
    ("ddpm", "DDPM"),
    ("plms", "PLMS"),
    ("unipc", "UniPC"),
    ("lcm", "LCM"),
)
_SCHEDULE_SUFFIXES = (("_karras", "Karras"), ("_exponential", "Exponential"))
_URL_PREFIXES = ("http://", "https://", "data:")
_A1111_PARAM = re.compile(r'\s*(\w[\w \-/+]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


# -- building ------------------------------------------------------------------------------------
def build_recipe(
    request: GenerationRequest,
    *,
    mode: Mode | str,
    model_id: str,
    weights_hash: str,
    seed: int,
    version: str,
    extra: Mapping[str, Any] | None = None,
) -> dict:
    """The recipe of one output: the full request plus model, weights hash, seed, sampler and input hashes."""
    req = request.model_dump(mode="json")
    if req.get("seed") is None:
        req["seed"] = seed
    hashes: dict[str, dict] = {}
    for loc, value in _media_inputs(request):
        entry: dict[str, Any] = {"sha256": media_digest(value)}
        if _is_local_path(value):
            path = Path(value).resolve()
            entry["path"] = str(path)
            _set_location(req, loc, str(path))  # absolute, so a rerun works from any directory
        elif isinstance(value, str) and value.startswith("data:"):
            _set_location(req, loc, {"sha256": entry["sha256"]})  # never copy inline data into a recipe
        hashes[loc] = entry
    recipe: dict[str, Any] = {
        "recipe_format": RECIPE_FORMAT,
        "version": version,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "mode": mode.value if isinstance(mode, Mode) else str(mode),
        "conditions": request.conditions(),
        "model": model_id,
        "weights_hash": weights_hash,
        "seed": int(seed),
        "sampler": request.sampler,
        "request": req,
        "input_hashes": hashes,
    }
    for key, value in (extra or {}).items():
        if key in recipe:
            raise ValueError(f"extra recipe key {key!r} would overwrite a core recipe field")
        recipe[key] = value
    json.dumps(recipe)  # fail here, not half-way through writing a file, if extra is not JSON
    return recipe


def _media_inputs(request: GenerationRequest) -> Iterator[tuple[str, Any]]:
    """(location, value) of every input that carries content: images, mask, video, LoRA files."""
    for name in ("image", "mask", "video"):
        value = getattr(request, name)
        if value is not None:
            yield name, value
    for i, c in enumerate(request.controls):
        yield f"controls[{i}].image", c.image
    for i, r in enumerate(request.references):
        yield f"references[{i}].image", r.image
    for i, lora in enumerate(request.loras):
        yield f"loras[{i}].path", lora.path


def _is_local_path(value: Any) -> bool:
    return isinstance(value, (str, Path)) and not str(value).startswith(_URL_PREFIXES) and Path(value).is_file()


_LOC = re.compile(r"^(\w+)(?:\[(\d+)\]\.(\w+))?$")


def _get_location(req: dict, loc: str) -> Any:
    name, index, field = _LOC.match(loc).groups()
    if index is None:
        return req.get(name)
    items = req.get(name) or []
    return items[int(index)].get(field) if int(index) < len(items) else None


def _set_location(req: dict, loc: str, value: Any) -> None:
    name, index, field = _LOC.match(loc).groups()
    if index is None:
        req[name] = value
    else:
        req[name][int(index)][field] = value


def _recipe_locations(req: dict) -> list[str]:
    """Input locations present in a dumped request."""
    locs = [name for name in ("image", "mask", "video") if req.get(name) is not None]
    for name, field in (("controls", "image"), ("references", "image"), ("loras", "path")):
        locs += [f"{name}[{i}].{field}" for i in range(len(req.get(name) or []))]
    return locs


# -- rerunning -----------------------------------------------------------------------------------
def request_from_recipe(recipe: Mapping[str, Any], *, inputs: Mapping[str, Any] | None = None) -> GenerationRequest:
    """The request that regenerates this output (its own seed, n=1); file inputs must be unchanged."""
    # In-memory inputs are not stored in a recipe: pass them again in `inputs`, keyed by location
    # ({"image": pil_image, "controls[0].image": "depth.png"}); they are checked against the recorded hash.
    if not isinstance(recipe, Mapping) or not isinstance(recipe.get("request"), Mapping):
        raise RequestError(
            "this is not a mediagen recipe (it has no 'request'): read it with mediagen.media.read_recipe"
        )
    req = copy.deepcopy(dict(recipe["request"]))
    hashes = recipe.get("input_hashes") or {}
    given = dict(inputs or {})
    unknown = set(given) - set(_recipe_locations(req))
    if unknown:
        raise RequestError(
            f"inputs {sorted(unknown)} are not inputs of this recipe; its inputs are {_recipe_locations(req) or 'none'}"
        )
    for loc in _recipe_locations(req):
        value = _get_location(req, loc)
        recorded = hashes.get(loc) or {}
        want = recorded.get("sha256") or (value.get("sha256") if isinstance(value, Mapping) else None)
        if loc in given:
            got = media_digest(given[loc])
            if want and got != want:
                raise RequestError(
                    f"the {loc} given differs from the one this output was made from "
                    f"(sha256 {got[:12]}..., recorded {want[:12]}...): pass the original"
                )
            _set_location(req, loc, given[loc])
            continue
        if isinstance(value, Mapping):
            raise RequestError(
                f"the recipe's {loc} was passed in memory and is not stored (sha256 {str(want)[:12]}...): "
                f"pass it again, e.g. request_from_recipe(recipe, inputs={{{loc!r}: ...}})"
            )
        if recorded.get("path"):
            path = Path(value)
            if not path.is_file():
                raise RequestError(f"the recipe's {loc} file {value} is missing: restore it, or pass it in `inputs`")
            got = media_digest(path)
            if got != want:
                raise RequestError(
                    f"the recipe's {loc} file {value} has changed since this output was made "
                    f"(sha256 now {got[:12]}..., recorded {want[:12]}...): restore the original file"
                )
    if recipe.get("seed") is not None:
        req["seed"] = int(recipe["seed"])
    req["n"] = 1
    try:
        return GenerationRequest.model_validate(req)
    except ValidationError as e:
        raise RequestError(f"the recipe's request is not valid for this version of mediagen: {e}") from None


# -- A1111 parameters text -----------------------------------------------------------------------
def _a1111_quote(value: Any) -> str:
    text = str(value)
    if "," in text or ":" in text or "\n" in text or text.startswith('"'):
        return json.dumps(text, ensure_ascii=False)
    return text


def _a1111_sampler(name: str) -> tuple[str, str | None]:
    schedule = None
    for suffix, label in _SCHEDULE_SUFFIXES:
        if name.endswith(suffix):
            name, schedule = name[: -len(suffix)], label
    return dict(_A1111_SAMPLERS).get(name, name), schedule


def _fmt_num(x: float) -> str:
    return f"{float(x):g}"


def a1111_parameters(recipe: Mapping[str, Any], size: tuple[int, int] | None = None) -> str:
    """The A1111 infotext: prompt, 'Negative prompt: ...', then 'Steps: N, Sampler: ..., ...'."""
    req = recipe.get("request") or {}
    lines = [req.get("prompt") or ""]
    if req.get("negative_prompt"):
        lines.append(f"Negative prompt: {req['negative_prompt']}")
    params: list[tuple[str, Any]] = []
    if req.get("steps") is not None:
        params.append(("Steps", req["steps"]))
    sampler = recipe.get("sampler") or req.get("sampler")
    schedule = None
    if sampler:
        label, schedule = _a1111_sampler(sampler)
        params.append(("Sampler", label))
    if schedule:
        params.append(("Schedule type", schedule))
    if req.get("guidance") is not None:
        params.append(("CFG scale", _fmt_num(req["guidance"])))
    seed = recipe.get("seed", req.get("seed"))
    if seed is not None:
        params.append(("Seed", seed))
    w, h = size or (req.get("width"), req.get("height"))
    if w and h:
        params.append(("Size", f"{w}x{h}"))
    if recipe.get("weights_hash"):
        params.append(("Model hash", str(recipe["weights_hash"])[:10]))
    if recipe.get("model"):
        params.append(("Model", recipe["model"]))
    if req.get("strength") is not None:
        params.append(("Denoising strength", _fmt_num(req["strength"])))
    ext = req.get("extend")
    if req.get("mask") is not None or ext:  # inpainting and outpainting both join pixels at a mask edge
        params.append(("Mask blur", req.get("mask_blur", 4)))
        params.append(("Mask blend", req.get("mask_blend", "gradient")))
    if req.get("mask") is not None and req.get("inpaint_only_masked"):
        params.append(("Inpaint area", "Only masked"))
        params.append(("Masked area padding", req.get("inpaint_padding", 32)))
    if ext:
        params.append(("Extend", f"{ext['left']},{ext['top']},{ext['right']},{ext['bottom']}"))
    if req.get("frames") and req["frames"] > 1:
        params.append(("Frames", req["frames"]))
    if req.get("fps"):
        params.append(("FPS", _fmt_num(req["fps"])))
    for lora in req.get("loras") or []:
        params.append(("Lora", f"{Path(lora['path']).stem}:{_fmt_num(lora['weight'])}"))
    if recipe.get("mode"):
        params.append(("Mode", recipe["mode"]))
    if recipe.get("version"):
        params.append(("Version", f"mediagen {recipe['version']}"))
    lines.append(", ".join(f"{k}: {_a1111_quote(v)}" for k, v in params))
    return "\n".join(lines)


def parse_a1111_parameters(text: str) -> dict[str, str]:
    """Parse an A1111 infotext into {'prompt', 'negative_prompt', and each 'Key': 'value'}."""
    lines = text.strip().split("\n")
    out: dict[str, str] = {}
    last = lines[-1] if lines else ""
    found = _A1111_PARAM.findall(last)
    if len(found) >= 3:
        lines = lines[:-1]
        for key, value in found:
            value = value.strip()
            if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    pass
            out[key.strip()] = value
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    out["prompt"] = "\n".join(prompt).strip()
    out["negative_prompt"] = "\n".join(negative).strip()
    return out


def recipe_from_a1111(text: str) -> dict:
    """A recipe from an A1111 infotext (prompt, seed, steps, CFG, size, sampler); model left to the default."""
    p = parse_a1111_parameters(text)
    req: dict[str, Any] = {"prompt": p["prompt"], "negative_prompt": p["negative_prompt"]}
    names = {label: name for name, label in reversed(_A1111_SAMPLERS)}

    def num(key: str, cast: type) -> Any:
        try:
            return cast(p[key]) if key in p else None
        except ValueError:
            return None

    for key, field, cast in (("Steps", "steps", int), ("CFG scale", "guidance", float), ("Seed", "seed", int)):
        if num(key, cast) is not None:
            req[field] = num(key, cast)
    if re.fullmatch(r"\d+x\d+", p.get("Size", "")):
        req["width"], req["height"] = (int(v) for v in p["Size"].split("x"))
    if "Sampler" in p:
        sampler = names.get(p["Sampler"], p["Sampler"])
        suffix = {label: s for s, label in _SCHEDULE_SUFFIXES}.get(p.get("Schedule type", ""), "")
        req["sampler"] = sampler + suffix
    return {
        "recipe_format": RECIPE_FORMAT,
        "source": "a1111",
        "model": p.get("Model"),
        "weights_hash": p.get("Model hash"),
        "seed": req.get("seed"),
        "sampler": req.get("sampler"),
        "parameters": {k: v for k, v in p.items() if k not in ("prompt", "negative_prompt")},
        "request": req,
        "input_hashes": {},
    }
