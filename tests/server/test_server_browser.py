"""The web UI in a real headless Chromium: text to image, inpainting with a mask painted by mouse drags,
outpainting, and the token login. Screenshots go to tests/server/artifacts/."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTIFACTS, STEPS, Served
from PIL import Image
from test_server_api import scene

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1400, "height": 950})
        yield ctx
        ctx.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    yield page
    page.close()
    assert errors == [], errors


@pytest.fixture
def input_png(tmp_path) -> Path:
    path = tmp_path / "scene.png"
    scene().save(path)
    return path


def generate(page, prompt: str) -> dict:
    """Fill the prompt, use 2 steps, press Generate, wait for the result image; the finished job's JSON."""
    before = page.get_attribute("#results", "data-job")
    page.fill("#prompt", prompt)
    page.fill("input[name=steps]", str(STEPS))
    page.click("#generate")
    page.wait_for_function("b => { const r = document.querySelector('#results'), i = r.querySelector('img');"
                           " return r.dataset.job !== b && i && i.complete && i.naturalWidth > 0; }",
                           arg=before, timeout=60_000)
    job_id = page.get_attribute("#results", "data-job")
    return page.evaluate("id => fetch('/api/jobs/' + id).then(r => r.json())", job_id)


def fetch_png(page, url: str) -> np.ndarray:
    data = page.evaluate("u => fetch(u).then(r => r.arrayBuffer()).then(b => Array.from(new Uint8Array(b)))", url)
    return np.asarray(Image.open(io.BytesIO(bytes(data))).convert("RGB")).astype(int)


def test_text_to_image(page, caps):
    tabs = page.locator(".tab").all_inner_texts()
    assert len(tabs) == len(caps["modes"]) and "Text → Image" in tabs
    assert page.is_visible("input[name=width]") and not page.is_visible("input[name=strength]")
    page.fill("input[name=width]", "64")
    page.fill("input[name=height]", "64")
    job = generate(page, "a red cube left of a blue sphere")
    assert job["status"] == "succeeded" and job["mode"] == "t2i" and job["outputs"][0]["width"] == 64
    assert "Done" in page.inner_text("#progress-text")
    page.wait_for_selector(f".card-thumb[data-job='{job['id']}'] img")
    page.click(f".card-thumb[data-job='{job['id']}']")
    page.wait_for_selector("#panel-details:not([hidden]) .detail-media")
    page.click(".recipe-box summary")
    page.wait_for_function("() => document.querySelector('.recipe').textContent.includes('weights_hash')")
    page.screenshot(path=str(ARTIFACTS / "t2i.png"), full_page=True)


def test_inpaint_with_a_mask_painted_by_mouse(page, server, input_png):
    page.click(".tab[data-mode=inpaint]")
    assert page.is_visible("#mask-tools") and not page.is_visible("#extend-tools")
    page.set_input_files("#file", str(input_png))
    page.wait_for_selector("#editor:not([hidden])")
    page.fill("#brush-size", "10")
    page.dispatch_event("#brush-size", "input")
    box = page.locator("#mask-canvas").bounding_box()

    def drag(*points: tuple[float, float]) -> None:
        xy = [(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy) for fx, fy in points]
        page.mouse.move(*xy[0])
        page.mouse.down()
        for p in xy[1:]:
            page.mouse.move(*p, steps=10)
        page.mouse.up()

    drag((0.15, 0.2), (0.6, 0.25), (0.6, 0.6))
    page.click("#tool-eraser")
    drag((0.6, 0.45), (0.6, 0.62))  # rub out the end of the stroke
    page.click("#tool-brush")
    page.screenshot(path=str(ARTIFACTS / "inpaint-mask.png"), full_page=True)
    job = generate(page, "a green ball")
    assert job["mode"] == "inpaint" and job["status"] == "succeeded"
    # the strokes reached the server as the mask: white along the drag, black elsewhere, the erased part gone
    m = np.asarray(Image.open(server.data / job["request"]["mask"]).convert("L"))
    h, w = m.shape
    assert m[int(h * 0.2), int(w * 0.3)] > 200 and m[int(h * 0.35), int(w * 0.6)] > 200
    assert m[int(h * 0.55), int(w * 0.6)] < 50 and m[int(h * 0.9), int(w * 0.1)] < 50
    out, orig = fetch_png(page, job["outputs"][0]["url"]), np.asarray(scene()).astype(int)
    keep = m == 0
    assert np.array_equal(out[keep], orig[keep]) and not np.array_equal(out, orig)
    page.screenshot(path=str(ARTIFACTS / "inpaint.png"), full_page=True)


def test_outpaint_with_a_live_canvas_preview(page, input_png):
    page.click(".tab[data-mode=outpaint]")
    page.set_input_files("#file", str(input_png))
    page.wait_for_selector("#outpaint-canvas:not([hidden])")
    # a choice field of the schema is a drop-down of its choices, set to the schema's default
    assert page.eval_on_selector("select[name=mask_blend]", "s => [s.value, [...s.options].map(o => o.value)]") == [
        "gradient", ["gradient", "feather"]]
    page.click("#advanced > summary")
    page.select_option("select[name=mask_blend]", "feather")
    for side, px in (("left", 32), ("top", 0), ("right", 0), ("bottom", 32)):
        page.fill(f"#extend-{side}", str(px))
        page.dispatch_event(f"#extend-{side}", "input")
    assert page.inner_text("#extend-size") == "64×64 → 96×96"
    assert page.evaluate("() => [document.querySelector('#outpaint-canvas').width,"
                         " document.querySelector('#outpaint-canvas').height]") == [96, 96]
    page.screenshot(path=str(ARTIFACTS / "outpaint-canvas.png"), full_page=True)
    job = generate(page, "more of the scene")
    assert job["mode"] == "outpaint" and job["request"]["extend"] == {"left": 32, "top": 0, "right": 0, "bottom": 32}
    assert job["request"]["mask_blend"] == "feather"
    out = job["outputs"][0]
    assert (out["width"], out["height"]) == (96, 96)
    got = fetch_png(page, out["url"])
    assert np.array_equal(got[0:64, 32:96], np.asarray(scene()).astype(int))
    assert page.evaluate("() => document.querySelector('#results img').naturalWidth") == 96
    page.screenshot(path=str(ARTIFACTS / "outpaint.png"), full_page=True)


def test_live_progress_with_previews_and_cancel(page):
    page.select_option("#model", "tiny")
    page.wait_for_selector("body[data-model=tiny] .tab[data-mode=t2i][aria-selected=true]")  # its form, not the last
    page.fill("input[name=width]", "256")
    page.fill("input[name=height]", "256")
    page.fill("input[name=steps]", "400")  # about 20 s of work on 2 busy cores: still running at the checks
    page.fill("#prompt", "a slow one")
    page.click("#generate")
    page.wait_for_function("() => { const i = document.querySelector('#preview');"
                           " return !i.hidden && i.complete && i.naturalWidth > 0; }", timeout=60_000)
    page.wait_for_function("() => /Step \\d+\\/400/.test(document.querySelector('#progress-text').textContent)")
    width = page.evaluate("() => parseFloat(document.querySelector('#bar-fill').style.width)")
    assert 0 < width < 100
    page.screenshot(path=str(ARTIFACTS / "progress.png"), full_page=True)
    page.click("#cancel")
    page.wait_for_function("() => document.querySelector('#progress-text').textContent === 'Cancelled'")
    assert page.is_hidden("#cancel")


def test_use_as_input_and_rerun(page, server):
    page.fill("input[name=width]", "64")
    page.fill("input[name=height]", "64")
    first = generate(page, "a yellow sphere")
    page.click("#results button:has-text('Use as input')")
    page.wait_for_selector(".tab[data-mode=i2i][aria-selected=true]")
    page.wait_for_selector("#editor:not([hidden])")
    second = generate(page, "a yellow sphere at dusk")
    assert second["mode"] == "i2i" and second["request"]["image"].startswith("uploads/")
    before = page.evaluate("() => document.querySelector('#results').dataset.job")
    page.click("#results button:has-text('Re-run')")
    page.wait_for_function("b => document.querySelector('#results').dataset.job !== b"
                           " && document.querySelector('#results img')?.naturalWidth > 0", arg=before)
    rerun = page.evaluate("id => fetch('/api/jobs/' + id).then(r => r.json())",
                          page.get_attribute("#results", "data-job"))
    assert rerun["request"]["seed"] == second["outputs"][0]["seed"]
    assert np.array_equal(fetch_png(page, rerun["outputs"][0]["url"]), fetch_png(page, second["outputs"][0]["url"]))
    assert first["id"] != second["id"]


def test_login_with_the_token(browser, tmp_path):
    s = Served(tmp_path / "data", token="browser-token").start()
    page = browser.new_page()
    try:
        page.goto(s.url + "/")
        page.wait_for_url("**/login")
        page.fill("#token", "wrong")
        page.click("button[type=submit]")
        page.wait_for_selector("#login-error:has-text('Wrong token')")
        page.fill("#token", "browser-token")
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "after-login.png"))
    finally:
        page.close()
        s.stop()
