"""Tests of world clips: motion, trajectories against the rendered frames, events, captions, files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mediagen.errors import RequestError
from mediagen.media import load_audio, load_video
from mediagen.world.clip_captions import check_clip_caption, describe_clip, motion_specs
from mediagen.world.clips import contact_strip, render_clip, sample_clip, save_clip
from mediagen.world.geometry import dims
from mediagen.world.physics import (
    SLIDE_DECEL,
    ClipSpec,
    G,
    Motion,
    contact_radius,
    simulate,
    stride_length,
)
from mediagen.world.spec import Camera, FigureSpec, ObjectSpec, SceneSpec


def _scene(objects=(), figures=(), **kw) -> SceneSpec:
    """A scene with the default camera on a plain wall."""
    return SceneSpec(objects=list(objects), figures=list(figures), camera=Camera(), background="studio", **kw)


@pytest.fixture(scope="module")
def sampled():
    """Rendered sampled clips (64 x 64, 16 frames) with many events."""
    rng = np.random.default_rng(2024)
    return [render_clip(sample_clip(rng, figure_prob=0.4), 64, 64) for _ in range(8)]


def _collide_spec(fps: float = 8.0) -> ClipSpec:
    """A red cube sliding right into a resting blue sphere."""
    cube = ObjectSpec("cube", "red", "medium", "matte", x=-1.48, z=7.0)
    ball = ObjectSpec("sphere", "blue", "medium", "metal", x=0.6, z=7.0)
    return ClipSpec(_scene([cube, ball]), [Motion("slide", (2.4, 0.0, 0.0)), Motion("rest")], 16, fps)


def _detected_box(r, inst: int) -> np.ndarray:
    """The instance's box (x0, y0, x1, y1) read from the instance map."""
    ys, xs = np.nonzero(r.instance == inst)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def test_sampling_and_rendering_are_deterministic():
    a = sample_clip(np.random.default_rng(7), n_frames=16)
    b = sample_clip(np.random.default_rng(7), n_frames=16)
    assert a.to_dict() == b.to_dict()
    assert sample_clip(np.random.default_rng(8)).to_dict() != a.to_dict()
    ca, cb = render_clip(a, 48, 40), render_clip(b, 48, 40)
    assert np.array_equal(ca.images, cb.images)
    assert ca.images.shape == (16, 40, 48, 3)
    assert [e.to_dict() for e in ca.events] == [e.to_dict() for e in cb.events]
    assert json.dumps(ca.to_dict()) == json.dumps(cb.to_dict())


def test_spec_json_round_trip_gives_the_same_motion():
    spec = sample_clip(np.random.default_rng(3), n_frames=20, fps=10, figure_prob=1.0)
    again = ClipSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again.to_dict() == spec.to_dict()
    s1, s2 = simulate(spec), simulate(again)
    assert np.array_equal(s1.position, s2.position) and s1.events == s2.events


def test_bad_input_is_rejected_with_clear_errors():
    with pytest.raises(RequestError, match="n_frames"):
        sample_clip(np.random.default_rng(0), n_frames=8)
    with pytest.raises(RequestError, match="split"):
        sample_clip(np.random.default_rng(0), split="val")
    scene = _scene([ObjectSpec("cube", "red")])
    with pytest.raises(RequestError, match="one motion per item"):
        ClipSpec(scene, [Motion("rest"), Motion("rest")])
    with pytest.raises(RequestError, match="unknown object motion"):
        ClipSpec(scene, [Motion("walk")])
    with pytest.raises(RequestError, match="fps"):
        ClipSpec(scene, fps=0)
    with pytest.raises(RequestError, match="clip size"):
        render_clip(ClipSpec(scene), 0, 64)


def test_sampled_clips_move_and_stay_in_view(sampled):
    kinds = {m.kind for c in sampled for m in c.spec.motions}
    assert {"slide", "fall"} <= kinds
    for c in sampled:
        n_obj = len(c.spec.scene.objects)
        changed = np.abs(np.diff(c.images.astype(np.int16), axis=0)).max(axis=-1) > 40  # (T-1, H, W)
        assert changed.sum() > 30, "nothing visibly moves"
        for i, t in enumerate(c.trajectories):
            landed = 0
            if i < n_obj and c.spec.motions[i].kind == "fall":
                landed = next(e.frame for e in c.events if e.kind == "floor" and e.ids == (i + 1,))
            assert t.in_view[landed:].all()
            assert (t.position[:, 1] >= 0).all()


def test_trajectories_follow_the_instance_maps(sampled):
    checked = 0
    for c in sampled:
        for k, r in enumerate(c.frames):
            for t, info in zip(c.trajectories, r.objects):
                if info.area < 12 or info.visible_fraction < 0.9 or not t.in_view[k]:
                    continue
                box = _detected_box(r, info.id)
                assert np.abs((box[:2] + box[2:]) / 2 - t.center[k]).max() <= 1.5, (k, info.id, box, t.box[k])
                assert np.abs(box - t.box[k]).max() <= 3.0, (k, info.id, box, t.box[k])
                checked += 1
    assert checked > 150


def test_collision_event_when_objects_touch():
    spec = _collide_spec()
    clip = render_clip(spec, 128, 128)
    hits = [e for e in clip.events if e.kind == "collision"]
    assert len(hits) == 1 and hits[0].ids == (1, 2)
    e = hits[0]
    assert e.materials == ("matte", "metal") and e.sizes == ("medium", "medium")
    pos = clip.simulation.position
    o1, o2 = spec.scene.objects

    def gap(k: int) -> float:
        return abs(pos[k, 1, 0] - pos[k, 0, 0]) - contact_radius(o1) - contact_radius(o2)

    assert abs(gap(e.frame)) <= e.speed / (2 * spec.fps) + 0.02
    assert gap(0) > 1.0
    assert abs(e.speed - (2.4 - SLIDE_DECEL * e.time)) < 0.02  # slowed by friction before the hit
    # the rendered objects touch at the event frame, and are apart at the start
    for k, touching in ((e.frame, True), (0, False)):
        r = clip.frames[k]
        a = r.instance == 1
        grown = a.copy()
        for _ in range(3):
            grown[1:] |= grown[:-1].copy()
            grown[:, 1:] |= grown[:, :-1].copy()
            grown[:, :-1] |= grown[:, 1:].copy()
        assert bool((grown & (r.instance == 2)).any()) == touching, k
    # momentum goes to the sphere: it ends up rolling right, the cube slows down
    v = clip.simulation.velocity
    assert v[e.frame + 1, 1, 0] > 0.5 and v[-1, 1, 0] > 0 and v[e.frame + 1, 0, 0] < 0.6 * v[e.frame - 1, 0, 0]
    assert clip.trajectories[1].center[-1, 0] > clip.trajectories[1].center[0, 0] + 5


def test_sampled_collisions_happen_at_contact(sampled):
    n = 0
    for c in sampled:
        pos, items = c.simulation.position, [*c.spec.scene.objects, *c.spec.scene.figures]
        for e in c.events:
            if e.kind != "collision":
                continue
            i, j = (k - 1 for k in e.ids)
            radii = [contact_radius(x) if isinstance(x, ObjectSpec) else 0.12 * x.height for x in (items[i], items[j])]
            gap = math.hypot(*(pos[e.frame, i, [0, 2]] - pos[e.frame, j, [0, 2]])) - sum(radii)
            assert abs(gap) <= e.speed / (2 * c.fps) + 0.03, (e, gap)
            n += 1
    assert n >= 1


def test_fall_bounces_at_floor_contact_with_physical_speeds():
    cube = ObjectSpec("cube", "green", "large", "metal", x=0.0, z=7.0, y=3.0)
    spec = ClipSpec(_scene([cube]), [Motion("fall")], 24, 12.0)
    sim = simulate(spec)
    floor = [e for e in sim.events if e.kind == "floor"]
    assert len(floor) >= 2 and all(e.kind == "floor" for e in sim.events)
    assert abs(floor[0].time - math.sqrt(2 * 3.0 / G)) < 1.0 / 240
    assert abs(floor[0].speed - math.sqrt(2 * G * 3.0)) < 0.1
    assert floor[1].speed < floor[0].speed * 0.5  # a metal cube bounces low
    y = sim.position[:, 0, 1]
    for e in floor:
        assert y[e.frame] <= e.speed / (2 * spec.fps) + 1e-6
        assert y[max(e.frame - 2, 0)] > y[e.frame] or e.frame < 2
    assert y[0] == 3.0 and y[-1] == 0.0


def test_stacks_rest_and_objects_land_on_flat_tops():
    base = ObjectSpec("cube", "red", "large", "matte", x=0.0, z=7.0)
    top_y = dims(base)[1]
    still = ClipSpec(_scene([base, ObjectSpec("sphere", "blue", "small", x=0.0, z=7.0, y=top_y)]), n_frames=16)
    sim = simulate(still)
    assert sim.events == [] and (sim.position[:, 1, 1] == top_y).all()
    # a ball dropped onto the cube lands on its top face, then rolls off and falls to the floor
    ball = ObjectSpec("sphere", "blue", "small", "metal", x=0.0, z=7.0, y=3.0)
    sim = simulate(ClipSpec(_scene([base, ball]), [Motion("rest"), Motion("fall", (0.9, 0.0, 0.0))], 24, 12.0))
    kinds = [(e.kind, e.ids) for e in sim.events]
    assert kinds[0] == ("collision", (2, 1)) and ("floor", (2,)) in kinds
    first = sim.events[0]
    assert first.position[1] == pytest.approx(top_y) and sim.position[first.frame, 1, 1] >= top_y - 1e-9
    floor = next(e for e in sim.events if e.kind == "floor")
    assert floor.position[0] > dims(base)[0] and floor.time > first.time + 0.3  # bounced up, then off the edge


def test_walls_of_the_view_turn_objects_back():
    ball = ObjectSpec("sphere", "red", "small", "matte", x=0.5, z=6.0)
    spec = ClipSpec(_scene([ball]), [Motion("roll", (-3.0, 0.0, 0.0))], 24, 8.0)
    clip = render_clip(spec, 64, 64)
    walls = [e for e in clip.events if e.kind == "wall"]
    assert walls and walls[0].ids == (1,)
    assert clip.trajectories[0].in_view.all()
    x = clip.trajectories[0].center[:, 0]
    k = walls[0].frame
    assert x[k - 1] < x[0] and x[-1] > x[k] + 2  # left, then back to the right


def test_walking_figure_steps_and_moves():
    fig = FigureSpec("walking", x=-1.2, z=7.0, color="orange")
    spec = ClipSpec(_scene(figures=[fig]), [Motion("walk", (1.0, 0.0, 0.0))], 24, 12.0)
    clip = render_clip(spec, 96, 96)
    steps = [e for e in clip.events if e.kind == "footstep"]
    gap = stride_length(fig.height, 1.0) / 2 / 1.0
    assert len(steps) >= 3 and np.allclose(np.diff([e.time for e in steps]), gap, atol=1e-6)
    assert all(e.materials == ("foot",) and e.ids == (1,) for e in steps)
    t = clip.trajectories[0]
    assert np.allclose(t.position[:, 0], -1.2 + np.arange(24) / 12.0, atol=1e-9)
    assert t.center[-1, 0] > t.center[0, 0] + 15
    for k in (0, 11, 23):
        box = _detected_box(clip.frames[k], 1)
        assert np.abs((box[:2] + box[2:]) / 2 - t.center[k]).max() <= 3.0
    # the legs swing: ankle keypoints alternate which one is ahead
    ahead = [r.keypoints[0, 15, 0] - r.keypoints[0, 16, 0] for r in clip.frames]
    assert max(ahead) > 2 and min(ahead) < -2


def test_captions_match_trajectories_and_check_out(sampled):
    rng = np.random.default_rng(0)
    stated = 0
    for c in sampled:
        cap = describe_clip(c, rng)
        assert check_clip_caption(cap.structured, c) == [], cap.text
        truth = {ms["id"]: ms for ms in motion_specs(c)}
        for it in cap.structured["items"]:
            d = it.get("direction")
            if not d:
                continue
            a, b = truth[it["id"]]["segment"]
            t = c.trajectories[it["id"] - 1]
            du, dv = t.center_stable[b] - t.center_stable[a]
            if "horizontal" in d:
                assert (du > 0) == (d["horizontal"] == "right"), (cap.text, du)
            if "depth" in d:
                assert (dv > 0) == (d["depth"] == "toward"), (cap.text, dv)
            stated += 1
    assert stated >= 5


def test_caption_words_and_checker_catch_wrong_claims():
    spec = _collide_spec()
    spec.pan = -5.0
    clip = render_clip(spec, 64, 64)
    cap = describe_clip(clip, np.random.default_rng(1), sound_prob=1.0)
    low = cap.text.lower()
    assert "red" in low and "right" in low and "blue" in low and "pans" in low and "left" in low
    assert any(w in low for w in ("hits", "bumps", "knocks", "collides")) and "clang" in low
    items = {it["id"]: it for it in cap.structured["items"]}
    assert items[1]["motion"] == "slides" and items[1]["direction"]["horizontal"] == "right"
    assert items[1]["events"][0] == {"kind": "collision", "with": 2, "sound": "clang"}
    assert items[2]["motion"] == "rolls"  # knocked by the cube
    bad = json.loads(json.dumps(cap.structured))
    bad["items"][0]["direction"] = {"horizontal": "left"}
    bad["items"][1]["motion"] = "falls"
    bad["camera"] = {"pan": "right"}
    assert len(check_clip_caption(bad, clip)) == 3


def test_save_clip_writes_mp4_with_sound_and_gif(tmp_path):
    clip = render_clip(_collide_spec(), 64, 48)
    mp4 = save_clip(clip, tmp_path / "c.mp4")
    gif = save_clip(clip, tmp_path / "c.gif")
    (frames, fps), (gframes, _) = load_video(mp4), load_video(gif)
    assert len(frames) == 16 and len(gframes) == 16 and fps == 8.0
    assert np.abs(np.asarray(frames[5], dtype=np.int16) - clip.images[5]).mean() < 6
    audio, rate = load_audio(mp4)
    assert rate == 16000 and abs(len(audio) - 2.0 * 16000) < 0.05 * 16000
    assert np.abs(audio).max() > 0.05
    sheet = contact_strip(clip, columns=4, maps=("image", "seg_image"))
    assert sheet.shape == (2 * 50, 4 * 66, 3)  # one row of 4 frames per map


def test_a_motion_seen_mostly_behind_a_nearer_item_states_no_direction():
    """A small blue cube slides right behind a large red one that hides most of it: it slides, but which
    way is not there to be seen, so no direction is stated; alone, it slides right."""
    blue = ObjectSpec("cube", "blue", "small", x=-0.4, z=9.0)
    slide = Motion("slide", velocity=(0.9, 0.0, 0.0))
    red = ObjectSpec("cube", "red", "large", x=0.0, z=6.0)
    hidden = render_clip(ClipSpec(SceneSpec(objects=[red, blue], background="studio"), [Motion("rest"), slide],
                                  n_frames=16, fps=8.0))  # fmt: skip
    alone = render_clip(ClipSpec(SceneSpec(objects=[blue], background="studio"), [slide], n_frames=16, fps=8.0))
    behind, seen = motion_specs(hidden)[1], motion_specs(alone)[0]
    assert behind["motion"] == seen["motion"] == "slides"
    assert max(f.objects[1].visible_fraction for f in hidden.frames) < 0.5
    assert behind["direction"] is None and seen["direction"] == {"horizontal": "right", "depth": None}
