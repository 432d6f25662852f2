"""The official `openai` client, unchanged, against the OpenAI-compatible endpoints."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import openai
import pytest
from conftest import DEFAULT_MODEL, STEPS
from PIL import Image
from test_server_api import png_bytes, scene

FAST = {"steps": STEPS}


@pytest.fixture
def oa(server):
    with openai.OpenAI(base_url=server.url + "/v1", api_key=server.token or "unused", max_retries=0,
                       timeout=120) as c:
        yield c


def decode(item) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(item.b64_json))).convert("RGB")).astype(int)


def test_generate_b64_n_and_size(oa):
    r = oa.images.generate(prompt="a red cube", n=2, size="64x64", response_format="b64_json",
                           extra_body={**FAST, "seed": 11})
    assert len(r.data) == 2 and r.size == "64x64" and r.created > 0
    a, b = decode(r.data[0]), decode(r.data[1])
    assert a.shape == (64, 64, 3) and not np.array_equal(a, b)
    again = oa.images.generate(prompt="a red cube", size="64x64", extra_body={**FAST, "seed": 11})
    assert np.array_equal(decode(again.data[0]), a)  # the seed extension reproduces


def test_generate_url_format_and_model_names(oa):
    r = oa.images.generate(prompt="a blue ball", model="dall-e-3", size="64x64", extra_body=FAST)
    url = r.data[0].url  # dall-e models answer with URLs by default
    assert url and r.data[0].b64_json is None
    got = httpx.get(url)  # a signed URL: works without the token (tested in test_server_security)
    assert got.status_code == 200 and got.content.startswith(b"\x89PNG")
    r = oa.images.generate(prompt="a blue ball", model=DEFAULT_MODEL, size="64x64", extra_body=FAST)
    assert r.data[0].b64_json


def test_edit_with_mask_regenerates_only_transparent_pixels(oa):
    im = scene()
    mask = Image.new("RGBA", im.size, (0, 0, 0, 255))
    hole = np.zeros((64, 64), bool)
    hole[10:40, 20:50] = True
    arr = np.asarray(mask).copy()
    arr[hole, 3] = 0  # alpha 0 = regenerate (OpenAI's convention)
    r = oa.images.edit(image=("scene.png", png_bytes(im), "image/png"),
                       mask=("mask.png", png_bytes(Image.fromarray(arr, "RGBA")), "image/png"),
                       prompt="a green ball", extra_body={**FAST, "seed": 2, "mask_blend": "feather"})
    got, orig = decode(r.data[0]), np.asarray(im).astype(int)
    assert np.array_equal(got[~hole], orig[~hole])
    assert (np.abs(got - orig).sum(axis=2)[hole] > 0).mean() > 0.5


def test_edit_without_mask_and_variation(oa):
    r = oa.images.edit(image=("scene.png", png_bytes(scene()), "image/png"), prompt="night",
                       extra_body={**FAST, "strength": 0.5})
    assert decode(r.data[0]).shape == (64, 64, 3)
    r = oa.images.create_variation(image=("scene.png", png_bytes(scene()), "image/png"), n=2, extra_body=FAST)
    assert len(r.data) == 2


def test_models_list_and_retrieve(oa):
    ids = [m.id for m in oa.models.list().data]
    assert DEFAULT_MODEL in ids and "tiny" in ids
    assert oa.models.retrieve(DEFAULT_MODEL).id == DEFAULT_MODEL
    with pytest.raises(openai.NotFoundError):
        oa.models.retrieve("no-such-model")


@pytest.mark.parametrize("kwargs, param, status", [
    ({"size": "100x100"}, "size", 400),
    ({"n": 11}, "n", 400),
    ({"response_format": "svg"}, "response_format", 400),
    ({"style": "vivid"}, "style", 400),
    ({"background": "transparent"}, "background", 400),
    ({"output_format": "webp"}, "output_format", 400),
    ({"extra_body": {"frobnicate": 1}}, "frobnicate", 400),
    ({"extra_body": {"steps": 0}}, "steps", 400),
    ({"extra_body": {"mask_blend": "poisson"}}, "mask_blend", 400),
    ({"model": "no-such-model"}, "model", 404),
])
def test_unsupported_parameters_get_openai_errors(oa, kwargs, param, status):
    with pytest.raises(openai.APIStatusError) as e:
        oa.images.generate(prompt="x", **kwargs)
    assert e.value.status_code == status
    err = e.value.response.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["param"] == param and err["type"] == "invalid_request_error" and err["message"]


def test_edit_errors(oa):
    rgb_mask = ("mask.png", png_bytes(Image.new("RGB", (64, 64))), "image/png")
    with pytest.raises(openai.BadRequestError) as e:
        oa.images.edit(image=("a.png", png_bytes(scene()), "image/png"), mask=rgb_mask, prompt="x")
    assert e.value.response.json()["error"]["param"] == "mask"
    with pytest.raises(openai.BadRequestError) as e:
        oa.images.edit(image=("a.png", b"not an image", "image/png"), prompt="x")
    assert e.value.response.json()["error"]["param"] == "image"
