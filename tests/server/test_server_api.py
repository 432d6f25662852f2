"""The native API against a real server and worker: every mode, progress, streams, history, files, errors."""

from __future__ import annotations

import base64
import io
import json
import time

import httpx
import numpy as np
import pytest
from conftest import DEFAULT_MODEL, STEPS, wait_job
from PIL import Image, ImageDraw

from mediagen.media import read_recipe
from mediagen.schema import request_json_schema

CSRF = {"X-Mediagen-CSRF": "1"}  # what browsers cannot add cross-site: needed on multipart posts


def scene(w: int = 64, h: int = 64) -> Image.Image:
    im = Image.new("RGB", (w, h), (40, 90, 160))
    d = ImageDraw.Draw(im)
    d.rectangle([w // 8, h // 2, w // 2, h - 6], fill=(220, 40, 40))
    d.ellipse([w // 2, h // 8, w - 6, h // 2], fill=(240, 220, 60))
    return im


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def data_uri(im: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(im)).decode()


def pixels(client: httpx.Client, url: str) -> np.ndarray:
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")).astype(int)


def run(client: httpx.Client, **req) -> dict:
    req.setdefault("steps", STEPS)
    r = client.post("/api/jobs", json=req)
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/api/jobs/{r.json()['id']}"
    job = wait_job(client, r.json()["id"])
    assert job["status"] == "succeeded", job
    return job


def test_schema_and_openapi(client):
    assert client.get("/api/schema").json() == json.loads(json.dumps(request_json_schema()))
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/GenerationRequest")
    for path in ("/api/jobs/{job_id}", "/api/jobs/{job_id}/events", "/api/jobs/{job_id}/cancel",
                 "/api/models/{model_id}/capabilities", "/api/uploads", "/v1/images/generations",
                 "/v1/images/edits", "/v1/images/variations", "/v1/models"):
        assert path in spec["paths"], path
    outputs = spec["components"]["schemas"]["OutputView"]["properties"]["kind"]
    assert set(outputs["enum"]) == {"image", "video", "audio"}


def test_capabilities_are_what_mediagen_modes_prints(client):
    got = client.get(f"/api/models/{DEFAULT_MODEL}/capabilities").json()
    if DEFAULT_MODEL == "tiny":
        from tiny_model import load

        want = load("tiny").capabilities().model_dump(mode="json")
    else:
        import subprocess
        import sys

        out = subprocess.run([sys.executable, "-m", "mediagen.cli", "modes", "--model", DEFAULT_MODEL],
                             capture_output=True, text=True, check=True).stdout
        want = json.loads(out)
    assert got == want
    assert client.get("/api/models/no-such-model/capabilities").status_code == 404
    models = client.get("/api/models").json()
    assert models["default"] == DEFAULT_MODEL and DEFAULT_MODEL in {m["id"] for m in models["models"]}


def test_t2i_outputs_recipe_and_download(client):
    job = run(client, prompt="a red cube", seed=7, n=2, width=64, height=64)
    assert job["mode"] == "t2i" and job["attempts"] == 1 and len(job["outputs"]) == 2
    seeds = [o["seed"] for o in job["outputs"]]
    assert seeds == [7, 8]
    out = job["outputs"][0]
    assert out["kind"] == "image" and out["media_type"] == "image/png" and out["height"] == 64
    r = client.get(out["url"])
    assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
    recipe = read_recipe(r.content)
    assert recipe["seed"] == 7 and recipe["request"]["prompt"] == "a red cube"
    assert client.get(out["recipe_url"]).json()["seed"] == 7
    assert not np.array_equal(pixels(client, out["url"]), pixels(client, job["outputs"][1]["url"]))


def test_progress_eta_preview_and_events(client):
    r = client.post("/api/jobs", json={"prompt": "slow", "model": "tiny", "width": 256, "height": 256,
                                       "steps": 100, "seed": 1})
    jid = r.json()["id"]
    job = wait_job(client, jid, until=lambda j: j["status"] != "queued" and j["progress"]
                   and j["progress"]["step"] >= 3 and j["preview_url"])
    p = job["progress"]
    assert p["steps"] == 100 and p["items"] == 1 and 0 < p["fraction"] < 1
    assert p["eta_s"] is not None and p["eta_s"] > 0 and p["elapsed_s"] > 0
    prev = client.get(job["preview_url"])
    assert prev.status_code == 200 and Image.open(io.BytesIO(prev.content)).size == (32, 32)
    events, steps = [], []
    with client.stream("GET", f"/api/jobs/{jid}/events") as stream:
        kind = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append(kind)
                if kind == "job":
                    view = json.loads(line[6:])
                    if view["progress"]:
                        steps.append(view["progress"]["step"])
                    if len(steps) == 2:
                        assert client.post(f"/api/jobs/{jid}/cancel").json()["cancel_requested"]
                if kind == "end":
                    break
    assert events[-1] == "end" and events.count("job") >= 3
    assert steps == sorted(steps) and len(set(steps)) >= 2
    assert client.get(f"/api/jobs/{jid}").json()["status"] == "cancelled"


def test_i2i_from_a_data_uri(client):
    job = run(client, prompt="recolour", image=data_uri(scene()), strength=0.5, seed=3)
    assert job["mode"] == "i2i"
    ref = job["request"]["image"]
    assert ref.startswith("uploads/") and ref.endswith(".png")  # stored under the data dir, named by hash
    assert job["outputs"][0]["width"] == 64


def test_inpaint_from_uploads_keeps_pixels_outside_the_mask(client):
    im = scene()
    up = client.post("/api/uploads", files={"file": ("scene.jpg", png_bytes(im), "image/png")},
                     headers=CSRF).json()
    mask = Image.new("L", im.size, 0)
    ImageDraw.Draw(mask).rectangle([8, 8, 40, 40], fill=255)
    mref = client.post("/api/uploads", files={"file": ("mask.png", png_bytes(mask), "image/png")},
                       headers=CSRF).json()["ref"]
    assert up["width"] == 64 and up["mode"] == "RGB"
    job = run(client, prompt="a green ball", image=up["ref"], mask=mref, mask_blur=0, seed=5)
    assert job["mode"] == "inpaint"
    got, orig = pixels(client, job["outputs"][0]["url"]), np.asarray(im).astype(int)
    outside = np.asarray(mask) == 0
    assert np.array_equal(got[outside], orig[outside])
    assert (np.abs(got - orig).sum(axis=2)[~outside] > 0).mean() > 0.5


def test_outpaint_extends_the_canvas(client):
    extend = {"left": 16, "right": 16, "top": 0, "bottom": 32}  # 96 x 96: a multiple of every model's size step
    job = run(client, prompt="more sky", image=data_uri(scene()), extend=extend, seed=9)
    out = job["outputs"][0]
    assert job["mode"] == "outpaint" and (out["width"], out["height"]) == (96, 96)
    got = pixels(client, out["url"])
    assert np.array_equal(got[0:64, 16:80], np.asarray(scene()).astype(int))


def test_rerun_reproduces_an_output(client):
    job = run(client, prompt="same again", n=2, width=64, height=64)
    again = client.post(f"/api/jobs/{job['id']}/rerun", params={"output": 1})
    assert again.status_code == 202
    rerun = wait_job(client, again.json()["id"])
    assert rerun["request"]["seed"] == job["outputs"][1]["seed"] and len(rerun["outputs"]) == 1
    assert np.array_equal(pixels(client, rerun["outputs"][0]["url"]), pixels(client, job["outputs"][1]["url"]))


def test_history_search_filters_and_delete(client):
    tag = f"zebra{int(time.time() * 1000)}"
    a = run(client, prompt=f"{tag} on grass", width=64, height=64)
    run(client, prompt=f"{tag} at night", image=data_uri(scene()), strength=0.4)
    found = client.get("/api/jobs", params={"q": tag}).json()["jobs"]
    assert {j["mode"] for j in found} == {"t2i", "i2i"}
    only = client.get("/api/jobs", params={"q": f"{tag} on", "mode": "t2i"}).json()["jobs"]
    assert [j["id"] for j in only] == [a["id"]]
    assert client.get("/api/jobs", params={"q": tag, "status": "failed"}).json()["jobs"] == []
    page = client.get("/api/jobs", params={"limit": 1}).json()
    assert len(page["jobs"]) == 1 and page["next_before"] is not None
    assert client.delete(f"/api/jobs/{a['id']}").status_code == 204
    assert client.get(f"/api/jobs/{a['id']}").status_code == 404
    assert client.get(a["outputs"][0]["url"]).status_code == 404


@pytest.mark.parametrize("req, status, words", [
    ({"prompt": "x", "frames": 8}, 422, "not supported"),  # a video mode on an image model
    ({"prompt": "x", "steps": 0}, 422, "steps"),
    ({"prompt": "x", "mask": "uploads/" + "0" * 64 + ".png"}, 422, "needs the image"),
    ({"prompt": "x", "model": "nope"}, 404, "unknown model"),
    ({"prompt": "x", "width": 63}, 422, "multiple of"),
    ({"prompt": "x", "image": "/etc/hostname"}, 422, "file paths and URLs are not read"),
    ({"prompt": "x", "image": "https://example.com/a.png"}, 422, "file paths and URLs are not read"),
    ({"prompt": "x", "image": "uploads/../mediagen.db"}, 422, "file paths"),
    ({"prompt": "x", "image": "uploads/" + "0" * 64 + ".png"}, 404, "does not exist"),
    ({"prompt": "x", "image": "data:image/png;base64,bm90IGFuIGltYWdl"}, 422, "not an image"),
    ({"prompt": "x", "bogus": 1}, 422, "bogus"),
])
def test_bad_requests_are_refused_with_the_reason(client, req, status, words):
    r = client.post("/api/jobs", json=req)
    assert r.status_code == status, r.text
    assert words in json.dumps(r.json())


def test_unknown_ids_are_404(client):
    for path in ("/api/jobs/" + "0" * 32, "/api/jobs/..%2F..%2Fetc%2Fpasswd", "/api/jobs/nothex/outputs/0",
                 "/api/jobs/" + "0" * 32 + "/preview"):
        assert client.get(path).status_code == 404, path
    assert client.post("/api/jobs/" + "f" * 32 + "/cancel").status_code == 404


def test_a_listed_model_that_cannot_load_is_503_with_the_reason(client, server):
    r = client.get("/api/models/missing/capabilities")  # answered by a probe process, not the worker
    assert r.status_code == 503 and "not installed" in r.json()["detail"]
    r = client.post("/api/jobs", json={"prompt": "x", "model": "missing"})
    assert r.status_code == 503 and "not installed" in r.json()["detail"]
    r = client.post("/v1/images/generations", json={"prompt": "x", "model": "missing"})
    assert r.status_code == 503 and r.json()["error"]["type"] == "server_error"
    assert server.health()["worker"]["state"] in ("idle", "busy")
    assert run(client, prompt="still fine", model="tiny", width=64, height=64)["status"] == "succeeded"
