"""Media files: content-sniffed loading, atomic writes, and recipes embedded in PNG/JPEG/WebP/GIF/MP4/WebM."""

from __future__ import annotations

import base64
import os
import wave

import numpy as np
import pytest
from PIL import Image

from mediagen.errors import RequestError
from mediagen.media import load_audio, load_image, load_video, read_recipe, save_audio, save_image, save_video
from mediagen.recipe import build_recipe, parse_a1111_parameters
from mediagen.schema import GenerationRequest


def _recipe(**fields) -> dict:
    req = GenerationRequest(**{"prompt": "a lighthouse, stormy sea: ünïcode", "negative_prompt": "blurry",
                               "seed": 11, "steps": 8, "guidance": 4.5, "sampler": "euler", **fields})
    return build_recipe(req, mode=req.describe_mode(), model_id="builtin", weights_hash="feedface00112233",
                        seed=11, version="0.1.0")


def _noise_image(w: int = 40, h: int = 30, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _leftovers(folder) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


# -- images --------------------------------------------------------------------------------------
def test_png_recipe_round_trip_and_a1111_chunk(tmp_path):
    im, recipe = _noise_image(), _recipe(width=40, height=30)
    path = save_image(tmp_path / "out.png", im, recipe)
    assert read_recipe(path) == recipe
    with Image.open(path) as back:
        assert np.array_equal(np.asarray(back.convert("RGB")), np.asarray(im))
        params = parse_a1111_parameters(back.info["parameters"])
    assert params["prompt"] == recipe["request"]["prompt"]
    assert params["negative_prompt"] == "blurry"
    assert (params["Steps"], params["Seed"], params["Size"], params["Sampler"]) == ("8", "11", "40x30", "Euler")
    assert params["Model hash"] == "feedface00" and params["Model"] == "builtin"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_jpeg_and_webp_carry_the_recipe(tmp_path, suffix):
    recipe = _recipe()
    path = save_image(tmp_path / f"out{suffix}", _noise_image(), recipe)
    assert read_recipe(path) == recipe
    back = load_image(path)
    assert back.size == (40, 30)


def test_load_image_sniffs_content_not_extension(tmp_path):
    im = _noise_image()
    im.save(tmp_path / "really_png.jpg", format="PNG")
    im.save(tmp_path / "really_jpeg.png", format="JPEG", quality=95)
    assert np.array_equal(np.asarray(load_image(tmp_path / "really_png.jpg")), np.asarray(im))
    assert load_image(str(tmp_path / "really_jpeg.png")).size == (40, 30)
    Image.new("RGB", (4, 4)).save(tmp_path / "anim.png", format="GIF")
    with pytest.raises(RequestError, match="GIF file.*PNG, JPEG and WebP"):
        load_image(tmp_path / "anim.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(RequestError, match="supported image formats are PNG, JPEG and WebP"):
        load_image(tmp_path / "notes.png")


def test_load_image_sources(tmp_path):
    im = _noise_image()
    im.save(tmp_path / "a.png")
    uri = "data:image/png;base64," + base64.b64encode((tmp_path / "a.png").read_bytes()).decode()
    assert np.array_equal(np.asarray(load_image(uri)), np.asarray(im))
    arr = np.asarray(im)
    assert np.array_equal(np.asarray(load_image(arr)), arr)
    rgba = Image.new("RGBA", (5, 6), (1, 2, 3, 0))
    assert load_image(rgba).mode == "RGB" and load_image(rgba, mode=None).mode == "RGBA"
    with pytest.raises(RequestError, match="uint8"):
        load_image(arr.astype(np.float32))
    with pytest.raises(RequestError, match="does not exist"):
        load_image(tmp_path / "missing.png")


def test_load_image_scales_16_bit_grey(tmp_path):
    ramp = np.linspace(0, 65535, 256).astype(np.uint16).reshape(16, 16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    got = np.asarray(load_image(tmp_path / "deep.png"))[:, :, 0]
    assert got.shape == (16, 16) and got.min() == 0 and got.max() == 255
    assert np.abs(got.astype(int) - np.rint(ramp / 257)).max() <= 1


def test_load_image_guards_decompression_bombs(tmp_path):
    Image.new("L", (4000, 3000)).save(tmp_path / "big.png")
    with pytest.raises(RequestError, match=r"4000x3000 = 12\.0 MP, over the 10 MP limit"):
        load_image(tmp_path / "big.png", max_pixels=10_000_000)
    assert load_image(tmp_path / "big.png", max_pixels=12_000_000).size == (4000, 3000)


def test_failed_write_keeps_existing_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "keep.webp"
    target.write_bytes(b"previous output")
    with pytest.raises(RequestError, match="at most 16383 pixels"):
        save_image(target, Image.new("RGB", (16400, 2)), _recipe())
    assert target.read_bytes() == b"previous output"
    assert _leftovers(tmp_path) == []
    # a successful write replaces it whole
    save_image(target, _noise_image(), None)
    assert load_image(target).size == (40, 30)
    assert _leftovers(tmp_path) == []


def test_read_recipe_without_one_is_a_clear_error(tmp_path):
    _noise_image().save(tmp_path / "plain.png")
    with pytest.raises(RequestError, match="holds no mediagen recipe"):
        read_recipe(tmp_path / "plain.png")


# -- clips ---------------------------------------------------------------------------------------
def _clip(n: int = 10, w: int = 63, h: int = 47) -> list[Image.Image]:
    yy, xx = np.mgrid[0:h, 0:w]
    return [Image.fromarray(np.stack([(xx * 4 + 10 * i) % 256, yy * 5, np.full_like(xx, 20 * i)], -1)
                            .astype(np.uint8)) for i in range(n)]


def test_mp4_with_audio_round_trip(tmp_path):
    frames, sr = _clip(), 16000
    t = np.arange(int(sr * 10 / 12)) / sr
    audio = (0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    recipe = _recipe(frames=10, fps=12)
    path = save_video(tmp_path / "clip.mp4", frames, 12, audio=audio, sample_rate=sr, recipe=recipe)
    assert _leftovers(tmp_path) == []
    back, fps = load_video(path)
    assert len(back) == 10 and fps == pytest.approx(12)
    assert back[0].size == (64, 48)  # odd sizes padded to even for 4:2:0
    for i in (0, 5, 9):
        diff = np.abs(np.asarray(back[i], np.int16)[:47, :63] - np.asarray(frames[i], np.int16))
        assert diff.mean() < 6
    got, got_sr = load_audio(path)
    assert got_sr == sr and abs(len(got) - len(audio)) <= 1024
    mid = slice(2048, len(audio) - 2048)
    assert np.corrcoef(got[mid], audio[mid])[0, 1] > 0.95
    assert read_recipe(path) == recipe
    assert len(load_video(path, max_frames=4)[0]) == 4


@pytest.mark.parametrize("suffix", [".webm", ".gif"])
def test_webm_and_gif_round_trip(tmp_path, suffix):
    frames, recipe = _clip(6, 32, 24), _recipe(frames=6, fps=10)
    path = save_video(tmp_path / f"clip{suffix}", frames, 10, recipe=recipe)
    back, fps = load_video(path)
    assert len(back) == 6 and fps == pytest.approx(10, rel=0.05)
    assert np.abs(np.asarray(back[3], np.int16) - np.asarray(frames[3], np.int16)).mean() < 12
    assert read_recipe(path) == recipe


def test_save_video_errors(tmp_path):
    with pytest.raises(RequestError, match="frame 1 is 10x10 but frame 0 is 8x8"):
        save_video(tmp_path / "a.mp4", [Image.new("RGB", (8, 8)), Image.new("RGB", (10, 10))], 8)
    with pytest.raises(RequestError, match="sample_rate"):
        save_video(tmp_path / "a.mp4", [Image.new("RGB", (8, 8))], 8, audio=np.zeros(100, np.float32))
    with pytest.raises(RequestError, match=r"\.mp4"):
        save_video(tmp_path / "a.avi", [Image.new("RGB", (8, 8))], 8)
    assert list(tmp_path.iterdir()) == []


def test_load_video_rejects_still_images(tmp_path):
    _noise_image().save(tmp_path / "still.mp4", format="PNG")
    with pytest.raises(RequestError, match="still PNG image, not a video"):
        load_video(tmp_path / "still.mp4")


# -- sound ---------------------------------------------------------------------------------------
def test_load_wav_mixes_to_mono_float(tmp_path):
    left = np.linspace(-0.5, 0.5, 800)
    right = np.full(800, 0.25)
    pcm = (np.stack([left, right], 1) * 32767).round().astype("<i2")
    with wave.open(str(tmp_path / "st.wav"), "wb") as wf:
        wf.setnchannels(2)
        wf.setsampwidth(2)
        wf.setframerate(22050)
        wf.writeframes(pcm.tobytes())
    x, sr = load_audio(tmp_path / "st.wav")
    assert sr == 22050 and x.dtype == np.float32 and x.shape == (800,)
    assert np.allclose(x, (left + right) / 2, atol=1e-4)


def test_save_audio_round_trip(tmp_path):
    x = (0.5 * np.sin(np.arange(4000) / 7)).astype(np.float32)
    path = save_audio(tmp_path / "s.wav", x, 8000)
    y, sr = load_audio(path)
    assert sr == 8000 and np.allclose(x, y, atol=1 / 16000)
    assert os.listdir(tmp_path) == ["s.wav"]
