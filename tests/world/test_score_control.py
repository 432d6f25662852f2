"""Control-map agreement: a render agrees with its own maps and disagrees with another scene's."""

from __future__ import annotations

import numpy as np
import pytest

from mediagen.errors import RequestError
from mediagen.world import FigureSpec, ObjectSpec, SceneSpec, render_scene, sample_scene
from mediagen.world.score.control import LIMITS, decode_pose, edge_f1, score_control
from mediagen.world.score.tasks import control_map
from mediagen.world.spec import Camera


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(21)
    specs = [sample_scene(rng, n_objects=int(rng.integers(2, 5)), with_figure_prob=0.0) for _ in range(6)]
    return [(render_scene(a, 128, 128), render_scene(b, 128, 128)) for a, b in zip(specs, specs[1:] + specs[:1])]


@pytest.mark.parametrize("kind", ["edge", "depth", "seg"])
def test_render_agrees_with_its_own_map_only(kind, pairs):
    for r, other in pairs:
        own = score_control(kind, r.image, control_map(r, kind))
        assert own.correct and own.score >= LIMITS[kind], (kind, own.values)
        wrong = score_control(kind, r.image, control_map(other, kind))
        assert not wrong.correct and wrong.score < own.score, (kind, wrong.values)


def test_pose_agreement_follows_the_skeleton():
    figs = [("arms_out", 0.0), ("arms_up", -1.5), ("walking", 1.2)]
    for pose, x in figs:
        spec = SceneSpec(figures=[FigureSpec(pose=pose, x=x, z=6.0, color="red")],
                         objects=[ObjectSpec("cube", "blue", x=x + 2.0, z=8.0)], background="sky")  # fmt: skip
        r = render_scene(spec, 128, 128)
        own = score_control("pose", r.image, control_map(r, "pose"))
        assert own.correct, (pose, own.values)
        moved = SceneSpec(figures=[FigureSpec(pose="sitting", x=x - 1.4, z=7.5, color="red")], background="sky")
        other = render_scene(moved, 128, 128)
        wrong = score_control("pose", r.image, control_map(other, "pose"))
        assert not wrong.correct, (pose, wrong.values)


def test_pose_keypoints_decode_from_the_drawing():
    r = render_scene(SceneSpec(figures=[FigureSpec(pose="standing", z=6.0)]), 128, 128)
    kps = decode_pose(r.pose_image.astype(np.float64))
    truth = r.keypoints_openpose[0]
    assert len(kps) >= 12
    for k, x, y in kps:
        assert abs(truth[k, 0] - x) < 2.0 and abs(truth[k, 1] - y) < 2.0


def test_edge_f1_tolerance():
    a = np.zeros((20, 20), bool)
    a[10] = True
    b = np.roll(a, 2, axis=0)
    assert edge_f1(a, a) == 1.0
    assert edge_f1(a, b, tol=2) == 1.0
    assert edge_f1(a, b, tol=1) == 0.0


def test_control_errors():
    img = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(RequestError, match="kind"):
        score_control("normals", img, img)
    with pytest.raises(RequestError, match="resize"):
        score_control("edge", img, np.zeros((16, 16, 3), np.uint8))


def test_seg_matches_touching_objects_of_one_class():
    # three touching cubes form one segment of the map's cube class: each cube's region lies inside it
    cam = Camera(height=2.962, pitch=15.41, x=-0.133, yaw=1.057)
    objs = [ObjectSpec("cube", "yellow", "large", "metal", x=-0.553, z=6.832, rotation=0.7574),
            ObjectSpec("cube", "gray", "large", "metal", x=1.303, z=6.286, rotation=0.4298),
            ObjectSpec("cube", "orange", "large", "metal", x=0.33, z=8.448, rotation=1.4787)]  # fmt: skip
    r = render_scene(SceneSpec(objects=objs, camera=cam, background="sky"), 128, 128)
    own = score_control("seg", r.image, control_map(r, "seg"))
    assert own.correct and own.values["miou"] > 0.8 and own.values["class_agreement"] == 1.0, own.values


def test_seg_names_a_patterned_object_the_detector_cut_apart_by_its_whole_silhouette():
    # a small striped pyramid comes out as two regions, a pyramid-like tip and a cone-like base band of about
    # its size; together they are the map's pyramid, while a cube's map in the same place is not matched
    cam = Camera(height=3.171, pitch=14.156, x=0.258, yaw=2.709)
    pyramid = ObjectSpec("pyramid", "red", "medium", pattern="stripes", pattern_color="cyan", x=0.049, z=10.332, rotation=1.0807)
    r = render_scene(SceneSpec(objects=[pyramid], camera=cam, background="sky"), 128, 128)
    own = score_control("seg", r.image, control_map(r, "seg"))
    assert own.correct and own.values["class_agreement"] == 1.0, own.values
    cube = render_scene(SceneSpec(objects=[ObjectSpec("cube", "red", "medium", x=0.049, z=10.332)], camera=cam, background="sky"), 128, 128)
    assert score_control("seg", r.image, control_map(cube, "seg")).values["class_agreement"] == 0.0


def test_pose_ignores_a_solid_the_skeleton_only_crosses():
    # the figure's legs are hidden behind a cube: the drawn skeleton crosses the cube, which is no part of it
    spec = SceneSpec(objects=[ObjectSpec("cube", "cyan", "medium", x=-0.3, z=7.0)],
                     figures=[FigureSpec(pose="walking", x=-0.2, z=8.5, color="red")], background="sky")  # fmt: skip
    r = render_scene(spec, 128, 128)
    own = score_control("pose", r.image, control_map(r, "pose"))
    assert own.correct and own.values["silhouette"] > 0.9, own.values
