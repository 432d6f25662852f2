"""Tests of the detector: components, hulls, colour names, regions and the shape classifier on world renders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mediagen.world import COLORS, ObjectSpec, SceneSpec, make_geneval_prompts, render_scene, spec_from_prompt_meta
from mediagen.world.captions import GENEVAL_TAGS
from mediagen.world.score.detect import (
    COLOR_NAMES,
    SHAPE_CLASSES,
    ShapeModel,
    analyze,
    convex_hull_area,
    detect_objects,
    dilate,
    fit_mlp,
    label_components,
    load_shape_model,
    name_colors,
    segment,
    shape_features,
)
from mediagen.world.spec import COLOR_RGB, Camera


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
    assert right / total >= 0.98


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


def _cam(height: float, pitch: float, x: float, yaw: float) -> Camera:
    """A camera of a sampled scene."""
    return Camera(height=height, pitch=pitch, x=x, yaw=yaw)


CROWDED = {  # sampled GenEval scenes with touching objects of one colour: (spec, expected (shape, colour) list)
    "cones side by side": (
        SceneSpec([ObjectSpec("cone", "purple", "small", "metal", x=-2.077, z=10.29, rotation=0.1953),
                   ObjectSpec("cone", "red", "medium", "matte", x=0.162, z=6.274, rotation=1.1925),
                   ObjectSpec("cone", "purple", "small", "metal", x=-1.909, z=7.929, rotation=1.1259)],
                  camera=_cam(2.992, 13.109, -0.186, 3.603), background="beige"),
        [("cone", "purple"), ("cone", "purple"), ("cone", "red")]),
    "cube behind a cube": (
        SceneSpec([ObjectSpec("cube", "purple", "medium", "metal", x=0.286, z=9.606, rotation=1.0201),
                   ObjectSpec("cube", "purple", "large", "metal", x=1.145, z=7.624, rotation=1.1367)],
                  camera=_cam(3.156, 12.696, -0.232, 3.927), background="studio"),
        [("cube", "purple"), ("cube", "purple")]),
    "four cubes": (
        SceneSpec([ObjectSpec("cube", "purple", "medium", "matte", x=1.889, z=7.075, rotation=0.8973),
                   ObjectSpec("cube", "pink", "medium", "matte", x=0.538, z=6.163, rotation=0.5995),
                   ObjectSpec("cube", "gray", "medium", "matte", x=-1.671, z=9.144, rotation=0.396),
                   ObjectSpec("cube", "pink", "medium", "matte", x=0.522, z=8.716, rotation=0.3461)],
                  camera=_cam(2.993, 15.363, 0.076, 0.021), background="sky"),
        [("cube", "gray"), ("cube", "pink"), ("cube", "pink"), ("cube", "purple")]),
    "sphere in front of a sphere": (
        SceneSpec([ObjectSpec("sphere", "pink", "small", "matte", x=0.278, z=7.395, rotation=0.1241),
                   ObjectSpec("sphere", "gray", "small", "metal", x=-2.588, z=9.128, rotation=0.5214),
                   ObjectSpec("sphere", "pink", "large", "metal", x=0.241, z=8.769, rotation=0.8013)],
                  camera=_cam(2.928, 12.779, 0.233, -0.758), background="sky"),
        [("sphere", "gray"), ("sphere", "pink"), ("sphere", "pink")]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CROWDED))
def test_touching_objects_of_one_colour_are_counted_apart(name):
    spec, expected = CROWDED[name]
    assert sorted((d.shape, d.color) for d in detect_objects(render_scene(spec, 128, 128).image)) == expected


HARD = {  # sampled scenes: neutral solids on neutral floors, a partly hidden cube, a horizon between two objects
    "white cylinder on a gray floor": (
        SceneSpec([ObjectSpec("pyramid", "orange", "medium", "matte", x=0.207, z=10.256, rotation=1.1984),
                   ObjectSpec("cylinder", "white", "large", "metal", x=-2.283, z=9.615, rotation=1.046)],
                  camera=_cam(3.17, 14.089, -0.184, -3.346), background="studio"),
        [("cylinder", "white"), ("pyramid", "orange")]),
    "gray pyramid beside a pink cube": (
        SceneSpec([ObjectSpec("cube", "pink", "large", "metal", x=1.089, z=6.939, rotation=1.2545),
                   ObjectSpec("pyramid", "gray", "small", "metal", x=0.528, z=10.409, rotation=0.498)],
                  camera=_cam(2.955, 14.166, -0.293, 0.941), background="overcast"),
        [("cube", "pink"), ("pyramid", "gray")]),
    "small cube behind a large one": (
        SceneSpec([ObjectSpec("cube", "pink", "large", "metal", x=-1.152, z=8.892, rotation=0.5258),
                   ObjectSpec("cube", "cyan", "large", "matte", x=-0.331, z=5.789, rotation=0.0652),
                   ObjectSpec("cube", "purple", "large", "metal", x=2.638, z=9.601, rotation=0.0277),
                   ObjectSpec("cube", "red", "small", "matte", x=-1.357, z=6.959, rotation=1.5421)],
                  camera=_cam(2.909, 12.905, -0.065, 2.538), background="beige"),
        [("cube", "cyan"), ("cube", "pink"), ("cube", "purple"), ("cube", "red")]),
    "horizon between two objects": (
        SceneSpec([ObjectSpec("cube", "green", "large", "matte", x=2.198, z=9.572, rotation=0.6733),
                   ObjectSpec("cube", "orange", "medium", "metal", x=-1.484, z=5.343, rotation=0.5614),
                   ObjectSpec("cube", "gray", "large", "metal", x=-2.065, z=7.325, rotation=0.1588)],
                  camera=_cam(3.177, 15.114, 0.078, -2.381), background="sky"),
        [("cube", "gray"), ("cube", "green"), ("cube", "orange")]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(HARD))
def test_hard_scenes_are_read_object_by_object(name):
    spec, expected = HARD[name]
    r = render_scene(spec, 128, 128)
    dets = detect_objects(r.image)
    assert sorted((d.shape, d.color) for d in dets) == expected
    for d in dets:  # each detection covers one whole object
        ids, counts = np.unique(r.instance[d.mask], return_counts=True)
        gt = r.mask(int(ids[np.argmax(counts)]))
        assert (d.mask & gt).sum() / (d.mask | gt).sum() > 0.5, (name, d.shape, d.color)


def test_degrade_changes_pixels_but_keeps_the_image_in_range_and_is_seeded():
    """The fit's generated-image artefacts: same seed, same result; values stay 0..255; the picture changes
    but stays close to the render."""
    from mediagen.world.score.fit import degrade

    spec = spec_from_prompt_meta(make_geneval_prompts("two_object", 1, np.random.default_rng(3))[0], np.random.default_rng(4))
    img = render_scene(spec, 128, 128).image
    outs = [degrade(img, np.random.default_rng(s)) for s in (7, 7, 8)]
    assert np.array_equal(outs[0], outs[1])
    changed = [float(np.abs(o - img).mean()) for o in outs]
    for o in outs:
        assert o.shape == img.shape and o.min() >= 0 and o.max() <= 255
    assert all(0.0 < c < 12.0 for c in changed), changed


def test_labelled_regions_adds_degraded_copies_with_the_same_labels():
    """Every clean render gives its regions; with degraded=1 each scene also gives regions of a degraded copy."""
    from mediagen.world.score.fit import labelled_regions

    x0, y0 = labelled_regions(6, 0, degraded=0.0)
    x1, y1 = labelled_regions(6, 0, degraded=1.0)
    assert len(y1) > len(y0) > 0 and x0.shape[1] == x1.shape[1]
    assert set(y1.tolist()) >= set(y0.tolist())


def test_a_blurred_edge_is_trimmed_back_to_the_solid():
    """Blur spreads a solid's edge into a rim of mixed pixels; the region's core drops the rim at the
    half-contrast level and lies closer to the rendered silhouette than the raw region does."""
    from mediagen.world.score.fit import blur

    objs = [ObjectSpec("cube", "blue", "large", x=-1.0, z=7.0), ObjectSpec("cone", "orange", "large", x=1.4, z=7.5)]
    r = render_scene(SceneSpec(objects=objs, background="studio"), 128, 128)
    seg = segment(np.clip(blur(np.asarray(r.image, dtype=np.float64), 1.5), 0, 255))
    assert len(seg.masks) == 2
    for m, core in zip(seg.masks, seg.cores):
        gt = r.instance == int(np.bincount(r.instance[m]).argmax())
        iou_mask, iou_core = ((a & gt).sum() / (a | gt).sum() for a in (m, core))
        assert (core & ~m).sum() == 0 and core.sum() < m.sum()
        assert iou_core > iou_mask + 0.05 and iou_core > 0.85, (iou_mask, iou_core)


def test_compression_ripples_are_not_objects():
    """JPEG rings around edges; most ripples are too faint against the floor to count as objects: the
    contrast floor keeps every object and removes at least half the extra regions they would add."""
    import dataclasses
    import io

    from mediagen.world.score.detect import DetectSettings

    extra, extra_unfiltered = [], []
    for seed in range(8):
        spec = spec_from_prompt_meta(make_geneval_prompts("two_object", 1, np.random.default_rng(seed))[0],
                                     np.random.default_rng(seed + 10))  # fmt: skip
        r = render_scene(spec, 128, 128)
        buf = io.BytesIO()
        Image.fromarray(r.image).save(buf, "JPEG", quality=60)
        img = Image.open(buf).convert("RGB")
        extra.append(len(segment(img).masks) - len(r.objects))
        extra_unfiltered.append(len(segment(img, dataclasses.replace(DetectSettings(), min_contrast=0.0)).masks) - len(r.objects))
    assert min(extra) >= 0, extra
    assert 2 * sum(extra) <= sum(extra_unfiltered), (extra, extra_unfiltered)


def _soft(img: np.ndarray, seed: int = 0) -> np.ndarray:
    """A render (H, W, 3) uint8 blurred and noised like a decoded image, uint8."""
    from mediagen.world.score.fit import blur

    out = blur(np.asarray(img, dtype=np.float64), 1.2) + np.random.default_rng(seed).normal(0, 1.5, img.shape)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("bg", ["studio", "overcast"])
def test_gray_solids_on_a_gray_floor_survive_soft_edges(bg):
    """On a sharp render a gray solid differs from a shadow on a neutral floor by a small colour offset that
    blur and noise wipe out; a shadow-like blob with no caster beside it is still found as a solid."""
    objs = [ObjectSpec("cylinder", "gray", "medium", x=-1.0, z=7.0),
            ObjectSpec("cylinder", "gray", "medium", x=1.2, z=7.5)]
    r = render_scene(SceneSpec(objects=objs, background=bg), 128, 128)
    for img in (r.image, _soft(r.image)):
        assert [(d.shape, d.color) for d in detect_objects(img)] == [("cylinder", "gray")] * 2
    objs = [ObjectSpec("pyramid", "gray", "large", x=-1.3, z=7.0), ObjectSpec("cube", "red", "large", x=1.5, z=7.0)]
    dets = detect_objects(_soft(render_scene(SceneSpec(objects=objs, background=bg), 128, 128).image))
    assert sorted((d.shape, d.color) for d in dets) == [("cube", "red"), ("pyramid", "gray")]


def test_a_soft_cast_shadow_is_no_object():
    """The shadow a coloured solid casts on a neutral floor touches its caster and stays background."""
    r = render_scene(SceneSpec(objects=[ObjectSpec("cube", "blue", "large", x=0.0, z=7.0)], background="studio"),
                     128, 128)  # fmt: skip
    dets = detect_objects(_soft(r.image))
    assert [(d.shape, d.color) for d in dets] == [("cube", "blue")]
    solid = r.instance == int(np.bincount(r.instance[dets[0].mask]).argmax())
    assert (dets[0].mask & ~dilate(dilate(solid))).sum() < 0.05 * dets[0].mask.sum()  # no shadow beside it
