"""Edit scorers (inpaint, outpaint, i2i) on the world's own answers and on deliberately wrong ones."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mediagen.errors import RequestError
from mediagen.world.score.edit import SEAM_LIMIT, score_i2i, score_inpaint, score_outpaint, seam_ratio
from mediagen.world.score.tasks import make_records, prepare, score
from mediagen.world.spec import Camera, ObjectSpec, SceneSpec


@pytest.fixture(scope="module")
def inpaint_tasks():
    rng = np.random.default_rng(5)
    recs = make_records("two_object", 3, rng, mode="inpaint") + make_records("colors", 3, rng, mode="inpaint")
    return [prepare(r, "inpaint") for r in recs]


def test_world_inpaint_keeps_outside_and_fills_the_mask(inpaint_tasks):
    for t in inpaint_tasks:
        s = score(t, t.world)
        assert s["kept"] == 1.0
        assert s["content"] and s["correct"], (t.record["prompt"], s)


def test_inpaint_that_adds_nothing_or_touches_outside_fails(inpaint_tasks):
    for t in inpaint_tasks:
        unchanged = score(t, t.image)  # the input itself: the requested object is missing from the mask
        assert not unchanged["content"] and not unchanged["correct"]
        spoiled = np.asarray(t.world).copy()
        spoiled[:4] = 255 - spoiled[:4]  # rows outside the mask changed
        s = score_inpaint(t.image, spoiled, t.mask)
        assert s.values["kept"] < 0.98 and not s.correct


def test_inpaint_mask_size_must_match():
    img = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(RequestError, match="mask"):
        score_inpaint(img, img, np.zeros((16, 16)))


def test_outpaint_world_answer_is_seamless_and_a_pasted_fill_is_not():
    rng = np.random.default_rng(9)
    for rec in make_records("single_object", 3, rng, mode="outpaint"):
        t = prepare(rec, "outpaint")
        good = score(t, t.world)
        assert good["kept"] == 1.0 and good["seam"] <= SEAM_LIMIT and good["correct"], good
        left, _, right, _ = t.extend
        bad = np.asarray(t.world).copy()
        bad[:, :left] = bad[:, :left][::-1]  # the new strip upside down: content, but a seam
        bad[:, bad.shape[1] - right :] = 128
        s = score_outpaint(t.image, bad, t.extend)
        assert s.values["kept"] == 1.0 and s.values["seam"] > SEAM_LIMIT and not s.correct


def test_seam_ratio_is_one_on_a_smooth_ramp_and_large_on_a_step():
    ramp = np.repeat(np.linspace(0, 255, 64)[None, :, None], 3, axis=2).repeat(8, axis=0)
    assert seam_ratio(ramp, 32, axis=1) == pytest.approx(1.0, abs=0.01)
    step = np.zeros((8, 64, 3))
    step[:, 32:] = 200
    assert seam_ratio(step, 32, axis=1) > 50


def test_outpaint_size_is_checked():
    with pytest.raises(RequestError, match="expected"):
        score_outpaint(np.zeros((32, 32, 3)), np.zeros((32, 40, 3)), (8, 0, 8, 0))


def test_i2i_world_target_keeps_layout_and_follows_the_prompt():
    rng = np.random.default_rng(11)
    for rec in make_records("color_attr", 3, rng, mode="i2i"):
        t = prepare(rec, "i2i")
        good = score_i2i(t.image, t.world, rec)
        assert good.correct and good.values["layout"] > 0.7, good.values
        same = score_i2i(t.image, t.image, rec)  # nothing changed: layout kept, prompt ignored
        assert not same.correct and same.values["layout"] == 1.0
        moved = score_i2i(t.image, np.asarray(t.world)[:, ::-1], rec)  # mirrored: layout lost
        assert moved.values["layout"] < 0.5 and not moved.correct


def test_i2i_shape_edit_of_a_sole_object_keeps_its_layout_in_place():
    """The only object, a white sphere, is to become a pyramid: its outline must change, so the edge F1 stays
    low, yet the pyramid stands on the sphere's box and the layout is kept; moved aside, it is not."""
    cam = Camera(height=2.984, pitch=15.331, x=0.078, yaw=-2.111)
    pyramid = ObjectSpec("pyramid", "white", "medium", x=1.023, z=6.862, rotation=1.389)
    scene = SceneSpec(objects=[pyramid], camera=cam, background="slate")
    source = SceneSpec(objects=[replace(pyramid, shape="sphere")], camera=cam, background="slate")
    rec = {"tag": "single_object", "prompt": "a photo of a pyramid", "include": [{"class": "pyramid", "count": 1}],
           "scene": scene.to_dict(), "source": source.to_dict(), "strength": 0.6}  # fmt: skip
    t = prepare(rec, "i2i")
    good = score_i2i(t.image, t.world, rec)
    assert good.correct and good.values["layout"] < 0.5 and good.values["in_place"], good.values
    moved = score_i2i(t.image, np.roll(np.asarray(t.world), 16, axis=1), rec)  # the pyramid 16 px to the right
    assert moved.values["adherence"] and not moved.correct, moved.values
    assert not score_i2i(t.image, t.image, rec).correct  # nothing changed: no pyramid
