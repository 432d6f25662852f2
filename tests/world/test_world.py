"""Tests of the built-in world: sampling, rendering, ground truth, captions, prompt records."""

from __future__ import annotations

import copy
import json
import math
import re

import numpy as np
import pytest

from mediagen.world import (
    COLORS,
    HELDOUT_COMBOS,
    SEMANTIC_CLASSES,
    SHAPES,
    FigureSpec,
    ObjectSpec,
    SceneSpec,
    check_caption,
    check_meta,
    classify_color,
    describe,
    make_geneval_prompts,
    render_scene,
    sample_scene,
    spec_from_prompt_meta,
)
from mediagen.world.captions import GENEVAL_TAGS, relative_position
from mediagen.world.geometry import footprint_radius
from mediagen.world.sample import item_footprint
from mediagen.world.splits import SUBJECTS, has_heldout_text, is_subject_like


def _scenes(seed: int, n: int, **kw) -> list[SceneSpec]:
    """n sampled scenes from one seed."""
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, **kw) for _ in range(n)]


@pytest.fixture(scope="module")
def rendered():
    """A batch of (spec, render) pairs, many with figures."""
    return [(s, render_scene(s, 128, 128)) for s in _scenes(3, 30, with_figure_prob=0.5)]


def test_sampling_and_rendering_are_deterministic():
    a, b = _scenes(11, 5), _scenes(11, 5)
    assert [s.to_dict() for s in a] == [s.to_dict() for s in b]
    assert [s.to_dict() for s in _scenes(12, 5)] != [s.to_dict() for s in a]
    ra, rb = render_scene(a[0], 96, 80), render_scene(b[0], 96, 80)
    for name in ("image", "depth", "instance", "semantic", "edges"):
        assert np.array_equal(getattr(ra, name), getattr(rb, name)), name


def test_spec_json_round_trip():
    spec = _scenes(5, 1, with_figure_prob=1.0)[0]
    d = json.loads(json.dumps(spec.to_dict()))
    again = SceneSpec.from_dict(d)
    assert again.to_dict() == spec.to_dict()
    assert np.array_equal(render_scene(again, 64, 64).image, render_scene(spec, 64, 64).image)


def test_unknown_words_are_rejected():
    with pytest.raises(ValueError):
        ObjectSpec("torus", "red")
    with pytest.raises(ValueError):
        ObjectSpec("cube", "magenta")


@pytest.mark.parametrize("size", [(128, 128), (96, 64), (200, 150)])
def test_map_shapes_and_dtypes(size):
    w, h = size
    spec = _scenes(21, 1, with_figure_prob=1.0, aspect=w / h)[0]
    r = render_scene(spec, w, h)
    assert r.image.shape == (h, w, 3) and r.image.dtype == np.uint8
    assert r.depth.shape == (h, w) and r.depth.dtype == np.float32
    assert r.depth.min() >= 0.0 and r.depth.max() <= 1.0
    assert r.instance.shape == (h, w) and r.instance.dtype == np.int32
    assert r.semantic.shape == (h, w) and r.semantic.max() < len(SEMANTIC_CLASSES)
    assert r.edges.dtype == np.uint8 and set(np.unique(r.edges)) <= {0, 255}
    for img in (r.seg_image, r.depth_image, r.pose_image, r.normal_image):
        assert img.shape == (h, w, 3) and img.dtype == np.uint8
    assert r.keypoints.shape == (len(spec.figures), 17, 3) and r.keypoints.dtype == np.float32
    assert len(r.objects) == len(spec.objects) + len(spec.figures)


def test_objects_inside_view_and_visible(rendered):
    for spec, r in rendered:
        for o in r.objects:
            assert o.box is not None, o
            x0, y0, x1, y1 = o.box
            assert x0 >= 1 and y0 >= 1 and x1 <= r.width - 1 and y1 <= r.height - 1, o
            if o.kind == "object":
                assert o.visible_fraction > 0.45, o
                assert o.full_area >= 50, o  # about 10 px across or more at 128^2


def test_small_far_object_is_at_least_ten_pixels():
    spec = SceneSpec([ObjectSpec("sphere", "red", "small", x=0.0, z=10.5)])
    x0, y0, x1, y1 = render_scene(spec).objects[0].box
    assert x1 - x0 >= 10 and y1 - y0 >= 10


def test_footprints_do_not_overlap():
    for spec in _scenes(4, 60, with_figure_prob=0.5):
        items = [o for o in spec.objects if o.y == 0.0] + spec.figures  # stacked ones rest on others
        for i, a in enumerate(items):
            for b in items[i + 1 :]:
                assert math.hypot(a.x - b.x, a.z - b.z) >= item_footprint(a) + item_footprint(b), spec


def test_instance_semantic_and_edges_agree(rendered):
    for spec, r in rendered:
        inst, sem, edge = r.instance, r.semantic, r.edges > 0
        for o in r.objects:
            cls = SEMANTIC_CLASSES.index(o.shape)
            assert np.all(sem[inst == o.id] == cls)
            assert o.area == int((inst == o.id).sum())
        assert set(np.unique(sem[inst == 0])) <= {0, 1, 2}
        assert set(np.unique(inst)) <= set(range(len(r.objects) + 1))
        dx = inst[:, 1:] != inst[:, :-1]
        dy = inst[1:] != inst[:-1]
        assert np.all(edge[:, 1:][dx] | edge[:, :-1][dx])
        assert np.all(edge[1:][dy] | edge[:-1][dy])
        # every edge pixel touches a discontinuity of class, instance, depth or face
        near = np.zeros_like(edge)
        for a in (inst, sem):
            near[:, 1:] |= a[:, 1:] != a[:, :-1]
            near[:, :-1] |= a[:, 1:] != a[:, :-1]
            near[1:] |= a[1:] != a[:-1]
            near[:-1] |= a[1:] != a[:-1]
        on_object = inst > 0
        assert np.all(near[edge] | on_object[edge])
        assert edge.mean() < 0.15


def test_depth_is_consistent_with_occlusion(rendered):
    for spec, r in rendered:
        sky = r.semantic == 0
        assert np.all(r.depth[sky] == 1.0) and np.all(np.isinf(r.z[sky]))
        for o in r.objects:
            m = r.instance == o.id
            z = r.z[m]
            assert np.all(np.isfinite(z))
            # an object is about as far as its base point (within its own size)
            assert abs(float(np.median(z)) - o.depth) < 1.5, o
        # nearer objects win wherever boxes of two objects overlap
        objs = [o for o in r.objects if o.kind == "object"]
        for a in objs:
            for b in objs:
                if a.depth < b.depth - 1.5:
                    assert float(np.median(r.z[r.instance == a.id])) < float(np.median(r.z[r.instance == b.id]))


def test_keypoints_lie_on_their_figure(rendered):
    n_checked = 0
    for spec, r in rendered:
        figs = [o for o in r.objects if o.kind == "figure"]
        for f, kp in zip(figs, r.keypoints):
            mask = r.instance == f.id
            grown = mask.copy()
            for _ in range(2):
                grown[1:] |= grown[:-1].copy()
                grown[:-1] |= grown[1:].copy()
                grown[:, 1:] |= grown[:, :-1].copy()
                grown[:, :-1] |= grown[:, 1:].copy()
            for x, y, v in kp:
                if v == 2:
                    assert grown[int(y), int(x)], (f, x, y)
                    assert r.pose_image[int(y), int(x)].any() or kp[:, 2].sum() == 0
                    n_checked += 1
    assert n_checked > 50


def test_figure_left_and_right_follow_facing():
    spec = SceneSpec(figures=[FigureSpec("arms_out", x=0.0, z=6.0, facing=0.0)])
    kp = render_scene(spec).keypoints[0]
    assert kp[5, 0] > kp[6, 0] + 5  # facing the camera: the left shoulder is on the image right
    spec.figures[0].facing = math.pi
    kp = render_scene(spec).keypoints[0]
    assert kp[5, 0] < kp[6, 0] - 5
    assert kp[0, 2] == 1  # the nose is hidden when the figure faces away


def test_colors_stay_separable_after_shading():
    wrong = []
    for i, color in enumerate(COLORS):
        for material in ("matte", "metal"):
            shape = SHAPES[i % len(SHAPES)]
            spec = SceneSpec([ObjectSpec(shape, color, "small", material, x=0.6, z=9.0, rotation=0.4)])
            r = render_scene(spec)
            got = classify_color(r.image[r.instance == 1])
            if got != color:
                wrong.append((color, material, got))
    assert not wrong


def test_heldout_combos_and_subjects_never_in_train():
    seen = set()
    for spec in _scenes(8, 400):
        for o in spec.objects:
            assert (o.color, o.shape) not in HELDOUT_COMBOS
            assert not is_subject_like(o)
            seen.add((o.color, o.shape))
    assert len(seen) > 40  # the rest of the vocabulary does show up
    for spec in _scenes(9, 30, split="test"):
        assert any((o.color, o.shape) in HELDOUT_COMBOS or is_subject_like(o) for o in spec.objects)
    assert all(not any((s.color, s.shape) == c for c in HELDOUT_COMBOS) for s in SUBJECTS)


def test_captions_are_consistent_with_ground_truth():
    rng = np.random.default_rng(5)
    n_rel = 0
    for spec in _scenes(6, 40, with_figure_prob=0.3):
        cap = describe(spec, rng)
        assert not has_heldout_text(cap.text)
        problems = check_caption(cap.structured, render_scene(spec, 192, 192))
        assert not problems, (cap.text, problems)
        n_rel += bool(cap.structured["relations"])
    assert n_rel >= 16  # at least ~40% state a relation


def test_caption_checker_catches_wrong_captions():
    rng = np.random.default_rng(1)
    caught = 0
    for spec in _scenes(7, 30, n_objects=3):
        r = render_scene(spec)
        cap = describe(spec, rng, render=r, relation_prob=1.0)
        bad = copy.deepcopy(cap.structured)
        bad["objects"][0]["count"] += 1
        assert check_caption(bad, r)
        if cap.structured["relations"]:
            flip = copy.deepcopy(cap.structured)
            rel = flip["relations"][0]
            rel["subject"], rel["object"] = rel["object"], rel["subject"]
            assert check_caption(flip, r), cap.text
            caught += 1
    assert caught >= 10


def test_caption_text_mentions_counts_and_colours():
    rng = np.random.default_rng(2)
    spec = SceneSpec(
        [ObjectSpec("cube", "red", x=-1.5, z=7.0), ObjectSpec("cube", "red", x=1.5, z=7.0),
         ObjectSpec("sphere", "blue", x=0.0, z=9.0)]
    )  # fmt: skip
    for _ in range(10):
        text = describe(spec, rng).text.lower()
        assert "red" in text and "blue" in text
        assert re.search(r"\b(two|2) (\S+ )?red (\S+ )?(cubes|boxes|blocks)\b", text), text


def test_test_split_uses_heldout_phrasing():
    rng = np.random.default_rng(3)
    texts = [describe(s, rng, split="test").text for s in _scenes(10, 30)]
    assert any(has_heldout_text(t) for t in texts)
    for tag in GENEVAL_TAGS:
        for rec in make_geneval_prompts(tag, 5, rng, split="train"):
            assert not has_heldout_text(rec["prompt"]) and not rec["heldout"]["combo"]
        assert all(has_heldout_text(r["prompt"]) for r in make_geneval_prompts(tag, 5, rng, split="test"))


def _check_meta_directly(meta, r):
    """Own check of a record against GT: counts, colours, box-centre positions."""
    objs = [o for o in r.objects if o.kind == "object"]
    for inc in meta["include"]:
        found = [o for o in objs if o.shape == inc["class"]]
        assert len(found) == inc["count"], (meta, found)
        if "color" in inc:
            assert all(o.color == inc["color"] for o in found)
            assert all(classify_color(r.image[r.instance == o.id]) == inc["color"] for o in found)
        if "position" in inc:
            rel, idx = inc["position"]
            a = found[0]
            b = [o for o in objs if o.shape == meta["include"][idx]["class"]][0]
            (ax, ay), (bx, by) = a.center, b.center
            assert {"left of": ax < bx, "right of": ax > bx, "above": ay < by, "below": ay > by}[rel], meta


@pytest.mark.parametrize("tag", GENEVAL_TAGS)
def test_spec_from_prompt_meta_satisfies_record(tag):
    rng = np.random.default_rng(GENEVAL_TAGS.index(tag))
    for meta in make_geneval_prompts(tag, 4, rng):
        spec = spec_from_prompt_meta(meta, rng)
        r = render_scene(spec, 160, 160)
        assert check_meta(meta, r), meta
        _check_meta_directly(meta, r)


def test_check_meta_rejects_wrong_scenes():
    inc = [{"class": "cube", "count": 1}, {"class": "sphere", "count": 1, "position": ["left of", 0]}]
    meta = {"tag": "position", "include": inc, "prompt": "a sphere left of a cube"}
    good = SceneSpec([ObjectSpec("cube", "red", x=1.2, z=7.0), ObjectSpec("sphere", "blue", x=-1.2, z=7.0)])
    bad = SceneSpec([ObjectSpec("cube", "red", x=-1.2, z=7.0), ObjectSpec("sphere", "blue", x=1.2, z=7.0)])
    assert check_meta(meta, render_scene(good)) and not check_meta(meta, render_scene(bad))
    count = {"tag": "counting", "include": [{"class": "cube", "count": 2}],
             "exclude": [{"class": "cube", "count": 3}]}  # fmt: skip
    three = SceneSpec([ObjectSpec("cube", "red", x=x, z=7.0) for x in (-1.5, 0.0, 1.5)])
    assert not check_meta(count, render_scene(three))


def test_relative_position_matches_geneval_rule():
    assert relative_position((0, 40, 10, 50), (50, 40, 60, 50)) == {"left of"}
    assert relative_position((50, 0, 60, 10), (50, 50, 60, 60)) == {"above"}
    assert relative_position((0, 0, 10, 10), (1, 1, 11, 11)) == set()


def test_subject_objects_render_with_their_pattern():
    for s in SUBJECTS:
        spec = SceneSpec([s.object(x=0.0, z=6.0, size="large")])
        r = render_scene(spec)
        px = r.image[r.instance == 1]
        assert classify_color(px) == s.color, s
        plain = SceneSpec([ObjectSpec(s.shape, s.color, "large", s.material, x=0.0, z=6.0)])
        diff = np.abs(r.image.astype(int) - render_scene(plain).image.astype(int)).sum(-1)
        assert (diff[r.instance == 1] > 60).mean() > 0.05, s  # the pattern is visible
        assert footprint_radius(spec.objects[0]) > 0


def test_stacked_objects_rest_on_their_support():
    rng = np.random.default_rng(13)
    n = 0
    for spec in _scenes(14, 40, stack_prob=1.0):
        lifted = [o for o in spec.objects if o.y > 0]
        if not lifted:
            continue
        r = render_scene(spec)
        top = r.objects[spec.objects.index(lifted[0])]
        bases = [o for o in r.objects if o.kind == "object" and top.on_top_of(o)]
        assert len(bases) == 1 and bases[0].shape in ("cube", "cylinder")
        assert abs(top.position[1] - bases[0].height) < 1e-3
        assert top.center[1] < bases[0].center[1]  # higher in the image
        cap = describe(spec, rng, render=r, relation_prob=1.0)
        assert not check_caption(cap.structured, r), cap.text
        n += any(x["relation"] == "on top of" for x in cap.structured["relations"])
    assert n >= 5
