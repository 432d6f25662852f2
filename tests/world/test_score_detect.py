"""Tests of the detector: components, hulls, colour names, regions and the shape classifier on world renders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mediagen.world import COLORS, ObjectSpec, SceneSpec, make_geneval_prompts, render_scene, spec_from_prompt_meta
from mediagen.world.captions import GENEVAL_TAGS
from mediagen.world.score.detect import (
    COLOR_NAMES,
    SHAPE_CLASSES,
    ShapeModel,
    analyze,
    convex_hull_area,
    detect_objects,
    fit_mlp,
    label_components,
    load_shape_model,
    name_colors,
    segment,
    shape_features,
)
from mediagen.world.spec import COLOR_RGB


def _flood(mask: np.ndarray) -> int:
    """Number of 8-connected components by breadth-first search (reference implementation)."""
    seen = np.zeros_like(mask)
    n = 0
    for y, x in zip(*np.nonzero(mask)):
        if seen[y, x]:
            continue
        n += 1
        stack = [(y, x)]
        seen[y, x] = True
        while stack:
            cy, cx = stack.pop()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    qy, qx = cy + dy, cx + dx
                    if 0 <= qy < mask.shape[0] and 0 <= qx < mask.shape[1] and mask[qy, qx] and not seen[qy, qx]:
                        seen[qy, qx] = True
                        stack.append((qy, qx))
    return n


@pytest.mark.parametrize("seed", range(4))
def test_components_match_a_flood_fill(seed):
    mask = np.random.default_rng(seed).random((40, 50)) < 0.35
    lab, n = label_components(mask)
    assert n == _flood(mask)
    assert ((lab > 0) == mask).all()
    for k in range(1, n + 1):  # each label is one connected piece
        assert _flood(lab == k) == 1


def test_convex_hull_area_of_simple_shapes():
    rect = np.zeros((20, 20), dtype=bool)
    rect[3:9, 4:14] = True
    assert convex_hull_area(rect) == pytest.approx(60.0)
    tri = np.tril(np.ones((10, 10), dtype=bool))
    assert convex_hull_area(tri) == pytest.approx(100 - 0.5 * 9 * 9)  # staircase hull: (0,0) (1,0) (10,9) (10,10) (0,10)


def test_palette_colours_keep_their_names_under_shading():
    for name, rgb in COLOR_RGB.items():
        for k in (0.55, 0.8, 1.0):
            px = np.clip(np.array([rgb], dtype=np.float64) * k, 0, 255)
            assert COLOR_NAMES[int(name_colors(px)[0])] == name, (name, k)


def test_bad_image_is_rejected():
    with pytest.raises(ValueError, match="RGB"):
        analyze(np.zeros((8, 8, 2)))


def test_a_rendered_scene_is_found_object_by_object():
    objs = [ObjectSpec("sphere", "red", "large", x=-1.6, z=7.0), ObjectSpec("cube", "blue", "large", x=0.4, z=7.5),
            ObjectSpec("cone", "yellow", "large", x=2.0, z=6.5)]  # fmt: skip
    r = render_scene(SceneSpec(objects=objs, background="sky"), 128, 128)
    dets = sorted(detect_objects(r.image), key=lambda d: d.center[0])
    assert [(d.shape, d.color) for d in dets] == [("sphere", "red"), ("cube", "blue"), ("cone", "yellow")]
    for d, o in zip(dets, sorted(r.objects, key=lambda o: o.center[0])):
        iou = (d.mask & r.mask(o.id)).sum() / (d.mask | r.mask(o.id)).sum()
        assert iou > 0.8
        assert abs(d.center[0] - o.center[0]) < 1.5 and abs(d.center[1] - o.center[1]) < 1.5


def test_an_empty_scene_has_no_objects():
    for bg in ("sky", "studio", "beige"):
        assert detect_objects(render_scene(SceneSpec(background=bg), 96, 96).image) == []


def test_same_coloured_touching_objects_are_split():
    objs = [ObjectSpec("sphere", "green", "large", x=-0.62, z=7.0), ObjectSpec("sphere", "green", "large", x=0.62, z=7.0)]
    r = render_scene(SceneSpec(objects=objs, background="overcast"), 128, 128)
    assert len(segment(r.image).masks) == 2


def test_shipped_classifier_names_shapes_of_fresh_scenes():
    model = load_shape_model()
    assert model.classes == SHAPE_CLASSES
    rng = np.random.default_rng(123)
    right = total = 0
    for tag in GENEVAL_TAGS:
        for meta in make_geneval_prompts(tag, 5, rng, split="test"):
            r = render_scene(spec_from_prompt_meta(meta, rng), 128, 128)
            for d in analyze(r.image, model=model).detections:
                ids, counts = np.unique(r.instance[d.mask], return_counts=True)
                best = int(ids[np.argmax(counts)])
                if best:
                    total += 1
                    right += d.shape == r.objects[best - 1].shape
    assert total >= 40
    assert right / total >= 0.93


def test_fit_mlp_learns_and_round_trips_json():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 5))
    y = rng.integers(0, 3, 300)
    x = centres[y] + rng.normal(0, 1, (300, 5))
    m = fit_mlp(x, y, ("a", "b", "c"), hidden=8, iters=300)
    assert (m.probs(x).argmax(1) == y).mean() > 0.9
    again = ShapeModel.from_json(json.loads(json.dumps(m.to_json())))
    assert np.allclose(again.probs(x), m.probs(x), atol=1e-3)


def test_features_do_not_depend_on_scale():
    objs = [ObjectSpec("cylinder", "purple", "large", x=0.0, z=7.0)]
    spec = SceneSpec(objects=objs, background="studio")
    feats = []
    for size in (128, 256):
        r = render_scene(spec, size, size)
        feats.append(shape_features(r.mask(1), r.image.astype(np.float64)))
    silhouette = slice(0, 4)  # fill, aspect, solidity, compactness
    assert np.allclose(feats[0][silhouette], feats[1][silhouette], atol=0.08)


def test_every_colour_is_named_on_a_neutral_background():
    for i, c in enumerate(COLORS):
        obj = ObjectSpec(("sphere", "cube", "cylinder")[i % 3], c, "large", x=0.0, z=6.5)
        dets = detect_objects(render_scene(SceneSpec(objects=[obj], background="slate"), 128, 128).image)
        assert [d.color for d in dets] == [c]
