"""Masks, feathering, compositing, outpainting canvases and crop-and-stitch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from mediagen.engine.masks import (
    EMPTY_MASK,
    composite,
    crop,
    mask_crop_box,
    mask_from_alpha,
    outpaint_canvas,
    prepare_mask,
    soften,
    stitch,
)
from mediagen.errors import RequestError
from mediagen.schema import Extend


def _noise(w: int, h: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _rect_mask(w: int, h: int, box: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros((h, w), np.float32)
    m[box[1]:box[3], box[0]:box[2]] = 1.0
    return m


# -- prepare_mask --------------------------------------------------------------------------------
def test_prepare_mask_accepts_images_and_arrays(tmp_path):
    m8 = np.zeros((6, 8), np.uint8)
    m8[1:4, 2:5] = 255
    m8[5, 7] = 128
    want = m8.astype(np.float32) / 255
    Image.fromarray(m8).save(tmp_path / "m.png")
    for src in (m8, m8 > 0, Image.fromarray(m8), Image.fromarray(m8).convert("RGB"), tmp_path / "m.png",
                want, np.stack([m8] * 3, -1)):
        got = prepare_mask(src, (8, 6))
        assert got.dtype == np.float32 and got.shape == (6, 8)
        expect = (m8 > 0).astype(np.float32) if getattr(src, "dtype", None) == bool else want
        assert np.allclose(got, expect, atol=1e-6)


def test_prepare_mask_rgba_layer_transparent_means_keep():
    layer = np.zeros((4, 4, 4), np.uint8)
    layer[..., :3] = 255  # white everywhere in colour ...
    layer[1:3, 1:3, 3] = 255  # ... but opaque only where painted
    m = prepare_mask(Image.fromarray(layer, "RGBA"), (4, 4))
    assert m.sum() == 4 and m[1:3, 1:3].min() == 1


def test_prepare_mask_resizes_with_a_warning():
    m = np.zeros((10, 20), np.uint8)
    m[:, 10:] = 255
    with pytest.warns(UserWarning, match=r"mask is 20x10 but the image is 40x20.*resizing the mask to 40x20"):
        got = prepare_mask(m, (40, 20))
    assert got.shape == (20, 40) and got[:, :19].max() == 0 and got[:, 21:].min() == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare_mask(m, (20, 10))  # the right size: no warning


def test_prepare_mask_errors():
    with pytest.raises(RequestError, match=EMPTY_MASK):
        prepare_mask(np.zeros((8, 8), np.uint8), (8, 8))
    with pytest.raises(RequestError, match=r"2-D array \(H, W\) or an H x W x 3/4 colour image"):
        prepare_mask(np.ones((2, 8, 8, 3), np.uint8), (8, 8))
    with pytest.raises(RequestError, match=r"must lie in \[0, 1\]"):
        prepare_mask(np.full((8, 8), 255.0), (8, 8))


def test_mask_from_alpha_openai_convention():
    rgba = np.full((5, 6, 4), 200, np.uint8)
    rgba[..., 3] = 255
    rgba[2:4, 1:3, 3] = 0
    m = mask_from_alpha(Image.fromarray(rgba, "RGBA"))
    assert m.shape == (5, 6) and m[2:4, 1:3].min() == 1 and m.sum() == 4
    with pytest.raises(RequestError, match="no alpha channel"):
        mask_from_alpha(Image.new("RGB", (4, 4)))
    with pytest.raises(RequestError, match="no transparent pixels"):
        mask_from_alpha(Image.new("RGBA", (4, 4), (0, 0, 0, 255)))


# -- soften / composite --------------------------------------------------------------------------
def test_soften_ramps_inside_the_mask_only():
    m = _rect_mask(40, 30, (10, 5, 30, 25))
    w = soften(m, 6)
    assert np.all(w[m == 0] == 0)
    assert np.all(w[12 + 6:25 - 7, 10 + 7:30 - 7] == 1)  # more than blur_px inside: full weight
    row = w[15, 10:20]
    assert 0 < row[0] < 0.2 and np.all(np.diff(row) >= 0)  # a rising ramp from the edge inwards
    assert np.array_equal(soften(m, 0), m)
    # a mask reaching the image border is not feathered along the border
    edge = _rect_mask(20, 20, (0, 0, 20, 10))
    assert np.all(soften(edge, 4)[0:5, :] == 1)


def test_composite_keeps_outside_pixels_bit_exact():
    orig, gen = _noise(64, 48, 1), _noise(64, 48, 2)
    m = _rect_mask(64, 48, (16, 8, 48, 40))
    out = np.asarray(composite(Image.fromarray(orig), Image.fromarray(gen), m, 5))
    assert np.array_equal(out[m == 0], orig[m == 0])
    assert np.array_equal(out[14:34, 22:42], gen[14:34, 22:42])  # deep inside: generated, exactly
    band = out[24, 16:21].astype(int)
    between = (np.minimum(orig[24, 16:21], gen[24, 16:21]) <= band) & (band <= np.maximum(orig[24, 16:21],
                                                                                          gen[24, 16:21]))
    assert between.all()


def test_composite_resizes_generated_and_checks_mask_size():
    orig = Image.fromarray(_noise(32, 24, 3))
    gen = Image.new("RGB", (64, 48), (255, 0, 0))
    m = _rect_mask(32, 24, (8, 8, 24, 20))
    out = np.asarray(composite(orig, gen, m, 0))
    assert np.all(out[m == 1] == [255, 0, 0]) and np.array_equal(out[m == 0], np.asarray(orig)[m == 0])
    with pytest.raises(RequestError, match="mask is 16x16 but the image is 32x24"):
        composite(orig, gen, np.ones((16, 16), np.float32), 2)


# -- outpainting ---------------------------------------------------------------------------------
def test_outpaint_canvas_sizes_mask_and_placement():
    img = _noise(100, 60, 4)
    canvas, mask, box = outpaint_canvas(Image.fromarray(img), Extend(left=30, right=30, top=0, bottom=10))
    cw, ch = canvas.size
    assert cw % 8 == 0 and ch % 8 == 0 and cw >= 160 and ch >= 70
    assert (cw, ch) == (160, 72)  # 160 wide already; 70 high rounds up to 72, the extra goes to the bottom
    assert box == (30, 0, 130, 60)
    arr = np.asarray(canvas)
    assert np.array_equal(arr[0:60, 30:130], img)
    assert mask.shape == (72, 160) and mask[0:60, 30:130].max() == 0
    assert mask.sum() == 160 * 72 - 100 * 60
    # rounding on an axis that was not extended also goes into the mask (right side)
    canvas2, mask2, box2 = outpaint_canvas(Image.fromarray(_noise(61, 40, 5)), Extend(top=16), multiple=8)
    assert canvas2.size == (64, 56) and box2 == (0, 16, 61, 56) and mask2[16:, 61:].min() == 1


def test_outpaint_fill_continues_the_image_not_black():
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, :32] = (200, 40, 40)
    img[:, 32:] = (40, 40, 200)
    canvas, mask, _ = outpaint_canvas(Image.fromarray(img), Extend(left=32, right=32), multiple=8)
    arr = np.asarray(canvas).astype(int)
    new = mask == 1
    assert arr[new].mean() > 60  # not flat black
    left_new, right_new = arr[:, :32].reshape(-1, 3).mean(0), arr[:, -32:].reshape(-1, 3).mean(0)
    assert left_new[0] > left_new[2] + 60 and right_new[2] > right_new[0] + 60  # continues each edge's colour
    assert arr[new].std() > 1  # low-amplitude noise, not a flat fill
    assert np.array_equal(arr[:, 32:96], img)


def test_outpaint_canvas_errors():
    im = Image.new("RGB", (50, 40))
    with pytest.raises(RequestError, match=r"left=101 is more than twice the image width \(50 px"):
        outpaint_canvas(im, Extend(left=101))
    with pytest.raises(RequestError, match="adds nothing"):
        outpaint_canvas(im, Extend())
    assert outpaint_canvas(im, Extend(left=100, top=80))[0].size == (152, 120)


# -- crop and stitch -----------------------------------------------------------------------------
def test_mask_crop_box_pads_rounds_and_clamps():
    m = _rect_mask(400, 300, (200, 100, 220, 130))
    x0, y0, x1, y1 = mask_crop_box(m, 16, 8, 0)
    assert x0 <= 184 and y0 <= 84 and x1 >= 236 and y1 >= 146
    assert (x1 - x0) % 8 == 0 and (y1 - y0) % 8 == 0
    x0, y0, x1, y1 = mask_crop_box(m, 16, 8, 128)
    assert (x1 - x0, y1 - y0) == (128, 128) and x0 <= 200 and x1 >= 220
    x0, y0, x1, y1 = mask_crop_box(m, 0, 8, 64, aspect=2.0)
    assert (x1 - x0) == 2 * (y1 - y0)
    corner = _rect_mask(400, 300, (0, 290, 10, 300))
    assert mask_crop_box(corner, 32, 8, 64) == (0, 220, 80, 300)  # 10 + 2 * 32 -> 80, shifted inside the image
    with pytest.raises(RequestError, match=EMPTY_MASK):
        mask_crop_box(np.zeros((10, 10)), 4, 8, 0)


def test_crop_and_stitch_small_mask_in_big_image():
    orig = _noise(320, 240, 6)
    m = _rect_mask(320, 240, (150, 100, 170, 116))
    box = mask_crop_box(m, 8, 8, 64)
    x0, y0, x1, y1 = box
    assert np.array_equal(np.asarray(crop(Image.fromarray(orig), box)), orig[y0:y1, x0:x1])
    assert np.array_equal(crop(m, box), m[y0:y1, x0:x1])
    # the crop is generated at 8x the resolution, then pasted back
    work = Image.fromarray(255 - orig[y0:y1, x0:x1]).resize(((x1 - x0) * 8, (y1 - y0) * 8), Image.NEAREST)
    out = np.asarray(stitch(Image.fromarray(orig), work, box, m, 3))
    assert np.array_equal(out[m == 0], orig[m == 0])
    small = np.asarray(work.resize((x1 - x0, y1 - y0), Image.LANCZOS))
    assert np.array_equal(out[104:112, 154:166], small[104 - y0:112 - y0, 154 - x0:166 - x0])
    assert np.abs(out[104:112, 154:166].astype(int) - orig[104:112, 154:166]).mean() > 50
    # identical to compositing the same generated pixels over the whole image
    full = orig.copy()
    full[y0:y1, x0:x1] = small
    assert np.array_equal(out, np.asarray(composite(Image.fromarray(orig), Image.fromarray(full), m, 3)))


def test_stitch_feathering_matches_full_image_when_mask_touches_the_box():
    orig, gen = _noise(96, 80, 7), _noise(96, 80, 8)
    m = _rect_mask(96, 80, (30, 20, 60, 50))
    box = mask_crop_box(m, 0, 1, 0)
    assert box == (30, 20, 60, 50)
    x0, y0, x1, y1 = box
    out = stitch(Image.fromarray(orig), Image.fromarray(gen[y0:y1, x0:x1]), box, m, 5)
    assert np.array_equal(np.asarray(out), np.asarray(composite(Image.fromarray(orig), Image.fromarray(gen), m, 5)))


def test_stitch_refuses_a_box_that_misses_the_mask():
    m = _rect_mask(64, 64, (10, 10, 50, 50))
    with pytest.raises(RequestError, match="mask reaches outside the box"):
        stitch(Image.new("RGB", (64, 64)), Image.new("RGB", (16, 16)), (0, 0, 16, 16), m, 2)
