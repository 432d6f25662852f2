"""Recipes: what is recorded, the A1111 text, and rebuilding a request for a rerun."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from mediagen.errors import RequestError
from mediagen.recipe import (
    a1111_parameters,
    build_recipe,
    parse_a1111_parameters,
    recipe_from_a1111,
    request_from_recipe,
)
from mediagen.schema import Control, GenerationRequest, media_digest


def _png(path, value: int) -> str:
    Image.new("RGB", (16, 12), (value, 100, 200)).save(path)
    return str(path)


def _recipe(req: GenerationRequest, seed: int = 7, **kw) -> dict:
    return build_recipe(req, mode=req.describe_mode(), model_id="builtin", weights_hash="0123456789abcdef",
                        seed=seed, version="0.1.0", **kw)


def test_build_recipe_records_request_model_seed_and_inputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _png(tmp_path / "init.png", 10)
    mem = np.zeros((8, 8, 3), np.uint8)
    req = GenerationRequest(prompt="a red fox", image="init.png", mask=mem, steps=12, guidance=5.0,
                            sampler="euler_a", controls=[Control(kind="depth", image=Image.new("RGB", (8, 8)))])
    r = _recipe(req)
    assert r["mode"] == "inpaint + control:depth"
    assert r["conditions"] == ["control:depth"]
    assert (r["model"], r["weights_hash"], r["seed"], r["sampler"], r["version"]) == (
        "builtin", "0123456789abcdef", 7, "euler_a", "0.1.0")
    assert r["created"].endswith("Z")
    assert r["request"]["prompt"] == "a red fox"
    assert r["request"]["seed"] == 7  # a request without a seed records the one drawn
    assert r["request"]["image"] == str((tmp_path / "init.png").resolve())  # relative path made absolute
    assert r["request"]["mask"] == {"sha256": media_digest(mem)}
    assert r["request"]["controls"][0]["image"] == {"sha256": media_digest(Image.new("RGB", (8, 8)))}
    assert r["input_hashes"]["image"] == {"sha256": media_digest(tmp_path / "init.png"),
                                         "path": str((tmp_path / "init.png").resolve())}
    assert set(r["input_hashes"]) == {"image", "mask", "controls[0].image"}


def test_build_recipe_never_inlines_data_uris():
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    r = _recipe(GenerationRequest(prompt="x", image=uri))
    assert r["request"]["image"] == {"sha256": media_digest(uri)}
    assert "base64" not in str(r)


def test_build_recipe_extra_keys_and_collisions():
    req = GenerationRequest(prompt="x", seed=1)
    assert _recipe(req, extra={"item": 2})["item"] == 2
    with pytest.raises(ValueError, match="seed"):
        _recipe(req, extra={"seed": 3})


def test_a1111_parameters_format_and_parse():
    req = GenerationRequest(prompt="a castle, at dusk", negative_prompt="blurry, low quality", steps=30,
                            guidance=7.5, sampler="dpmpp_2m_karras", width=768, height=512, seed=42)
    text = a1111_parameters(_recipe(req, seed=42))
    lines = text.split("\n")
    assert lines[0] == "a castle, at dusk"
    assert lines[1] == "Negative prompt: blurry, low quality"
    assert lines[2].startswith("Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 42, "
                               "Size: 768x512, Model hash: 0123456789, Model: builtin")
    p = parse_a1111_parameters(text)
    assert p["prompt"] == "a castle, at dusk" and p["negative_prompt"] == "blurry, low quality"
    assert (p["Steps"], p["Seed"], p["Size"], p["CFG scale"]) == ("30", "42", "768x512", "7.5")
    assert p["Version"] == "mediagen 0.1.0"


def test_a1111_parameters_extra_keys_and_quoting(tmp_path):
    img = _png(tmp_path / "i.png", 1)
    req = GenerationRequest(prompt="p", image=img, mask=img, strength=0.65, inpaint_only_masked=True, seed=3,
                            steps=4, guidance=1.0, sampler="euler")
    text = a1111_parameters(_recipe(req, seed=3), size=(16, 12))
    assert "Denoising strength: 0.65" in text and "Mask blur: 4" in text and "Size: 16x12" in text
    assert "Mask blend: gradient" in text
    assert 'Mode: inpaint' in text
    p = parse_a1111_parameters(text)
    assert p["Inpaint area"] == "Only masked" and p["Denoising strength"] == "0.65"
    # a value with a comma or colon is quoted and comes back intact
    r = _recipe(req, seed=3)
    r["model"] = "org/model:v2, fp16"
    assert parse_a1111_parameters(a1111_parameters(r))["Model"] == "org/model:v2, fp16"


def test_recipe_from_a1111_text():
    text = ("masterpiece, a lighthouse\nNegative prompt: ugly\n"
            "Steps: 25, Sampler: Euler a, Schedule type: Automatic, CFG scale: 6, Seed: 1234, Size: 512x768, "
            "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1")
    r = recipe_from_a1111(text)
    req = request_from_recipe(r)
    assert (req.prompt, req.negative_prompt, req.steps, req.guidance, req.seed) == (
        "masterpiece, a lighthouse", "ugly", 25, 6.0, 1234)
    assert (req.width, req.height, req.sampler) == (512, 768, "euler_a")
    assert r["model"] == "v1-5-pruned-emaonly" and r["source"] == "a1111"


def test_request_from_recipe_round_trip(tmp_path):
    img = _png(tmp_path / "init.png", 50)
    req = GenerationRequest(prompt="a boat", image=img, strength=0.4, steps=9, guidance=3.0, sampler="heun", n=4,
                            seed=100)
    again = request_from_recipe(_recipe(req, seed=102))
    assert again.seed == 102 and again.n == 1  # this output's own seed, one output
    assert (again.prompt, again.strength, again.steps, again.sampler) == ("a boat", 0.4, 9, "heun")
    assert again.image == str((tmp_path / "init.png").resolve())
    assert again.resolved_mode() == req.resolved_mode()


def test_request_from_recipe_refuses_changed_or_missing_inputs(tmp_path):
    img = _png(tmp_path / "init.png", 50)
    recipe = _recipe(GenerationRequest(prompt="a boat", image=img, seed=1))
    _png(tmp_path / "init.png", 51)
    with pytest.raises(RequestError, match=r"image file .*init\.png has changed"):
        request_from_recipe(recipe)
    (tmp_path / "init.png").unlink()
    with pytest.raises(RequestError, match=r"image file .*init\.png is missing"):
        request_from_recipe(recipe)


def test_request_from_recipe_in_memory_inputs_must_be_passed_again():
    arr = np.full((8, 8, 3), 9, np.uint8)
    recipe = _recipe(GenerationRequest(prompt="x", image=arr, seed=1))
    with pytest.raises(RequestError, match="passed in memory"):
        request_from_recipe(recipe)
    assert request_from_recipe(recipe, inputs={"image": arr.copy()}).image is not None
    with pytest.raises(RequestError, match="differs"):
        request_from_recipe(recipe, inputs={"image": arr + 1})
    with pytest.raises(RequestError, match="not inputs of this recipe"):
        request_from_recipe(recipe, inputs={"mask": arr})


def test_request_from_recipe_rejects_non_recipes():
    with pytest.raises(RequestError, match="not a mediagen recipe"):
        request_from_recipe({"prompt": "x"})
