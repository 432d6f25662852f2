"""Gradient-domain blending: generated pixels meet the original without a step; outside stays exact."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mediagen.engine.masks import composite, mask_crop_box, stitch
from mediagen.engine.seams import seamless
from mediagen.errors import RequestError


def _smooth(w: int, h: int) -> np.ndarray:
    """A smooth picture with a little pixel noise, (H, W, 3) uint8."""
    ys, xs = np.mgrid[0:h, 0:w]
    img = np.stack([100 + 50 * np.sin(xs / 40.0), 80 + 20 * np.cos(ys / 25.0), 120 + 0.2 * xs], axis=2)
    img += np.random.default_rng(0).normal(0, 1.5, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _generated(orig: np.ndarray) -> np.ndarray:
    """What a decoder gives back: the same picture some levels off, its own noise, and a red square."""
    h, w = orig.shape[:2]
    gen = orig.astype(float) + 12 + np.random.default_rng(1).normal(0, 1.5, orig.shape)
    gen[h // 2 - 6:h // 2 + 6, w // 2 - 6:w // 2 + 6] = (220, 20, 20)
    return np.clip(np.rint(gen), 0, 255).astype(np.uint8)


def _box(w: int, h: int, box: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros((h, w), np.float32)
    m[box[1]:box[3], box[0]:box[2]] = 1.0
    return m


def _edge_step(out: np.ndarray, orig: np.ndarray, x0: int, rows: slice) -> float:
    """Mean colour jump between the last original column and the first column inside the mask."""
    return float(np.abs(out[rows, x0].astype(int) - orig[rows, x0 - 1].astype(int)).mean())


@pytest.mark.parametrize("size", [(90, 70), (260, 200)])  # solved in one piece / half size first
def test_gradient_blend_removes_the_offset_and_keeps_the_detail(size):
    w, h = size
    orig, gen = _smooth(w, h), _generated(_smooth(w, h))
    m = _box(w, h, (w // 5, h // 5, 4 * w // 5, 4 * h // 5))
    out = np.asarray(composite(Image.fromarray(orig), Image.fromarray(gen), m, 4, "gradient")).astype(int)
    feathered = np.asarray(composite(Image.fromarray(orig), Image.fromarray(gen), m, 4, "feather")).astype(int)
    assert np.array_equal(out[m == 0], orig[m == 0])
    rows = slice(h // 5 + 8, 4 * h // 5 - 8)
    x0 = w // 5
    assert _edge_step(out, orig, x0, rows) < 3.0  # noise-sized: the 12-level offset is gone
    # the feather fades the offset in over its width: the first columns inside climb towards +12
    assert (feathered[rows, x0 + 4] - orig[rows, x0 + 4]).mean() > 8
    assert np.abs(out[rows, x0 + 4] - orig[rows, x0 + 4]).mean() < 3.0
    # deep inside, the generated detail stands out from its surroundings as much as it did
    c = (h // 2, w // 2)
    assert out[c][0] - out[c][1] > 150 and abs(int(out[c][0]) - 220) < 20


def test_half_size_solve_agrees_with_the_full_solve():
    w, h = 200, 160
    orig, gen = _smooth(w, h), _generated(_smooth(w, h))
    m = _box(w, h, (30, 20, 170, 140))
    coarse = seamless(orig, gen, m, direct_side=96).astype(int)
    full = seamless(orig, gen, m, direct_side=1000).astype(int)
    d = np.abs(coarse - full)
    assert d.mean() < 0.5 and d.max() <= 6


def test_empty_and_full_masks():
    orig, gen = _smooth(40, 30), _generated(_smooth(40, 30))
    zero, one = np.zeros((30, 40), np.float32), np.ones((30, 40), np.float32)
    assert np.array_equal(seamless(orig, gen, zero), orig)
    assert np.array_equal(seamless(orig, gen, one), gen)  # nothing to meet: the generated image


def test_stitch_gradient_matches_the_full_image_composite():
    w, h = 240, 180
    orig, gen = _smooth(w, h), _generated(_smooth(w, h))
    m = _box(w, h, (100, 70, 140, 110))
    box = mask_crop_box(m, 0, 1, 0)  # the mask touches the box on every side
    x0, y0, x1, y1 = box
    out = np.asarray(stitch(Image.fromarray(orig), Image.fromarray(gen[y0:y1, x0:x1]), box, m, 4, "gradient"))
    full = np.asarray(composite(Image.fromarray(orig), Image.fromarray(gen), m, 4, "gradient"))
    assert np.array_equal(out[m == 0], orig[m == 0])
    assert np.abs(out.astype(int) - full.astype(int)).max() <= 1


def test_a_soft_mask_mixes_in_its_share_of_the_shifted_pixels():
    orig, gen = _smooth(60, 50), _generated(_smooth(60, 50))
    hard = _box(60, 50, (15, 10, 45, 40))
    soft = hard * 0.5
    full = np.asarray(composite(Image.fromarray(orig), Image.fromarray(gen), hard, 4, "gradient")).astype(int)
    half = np.asarray(composite(Image.fromarray(orig), Image.fromarray(gen), soft, 4, "gradient")).astype(int)
    assert np.array_equal(half[hard == 0], orig[hard == 0])
    inside = hard == 1
    assert np.abs(half[inside] - (orig[inside] + full[inside]) / 2).max() <= 1


def test_unknown_blend_is_refused():
    m = _box(16, 16, (4, 4, 12, 12))
    with pytest.raises(RequestError, match="unknown mask blend 'poisson'; use one of gradient, feather"):
        composite(Image.new("RGB", (16, 16)), Image.new("RGB", (16, 16)), m, 2, "poisson")
