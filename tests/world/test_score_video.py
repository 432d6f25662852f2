"""Video scorers on world clips: motion direction, identity, first frame and trajectory, both ways."""

from __future__ import annotations

import numpy as np
import pytest

from mediagen.errors import RequestError
from mediagen.world import ObjectSpec, SceneSpec
from mediagen.world.clip_captions import motion_specs
from mediagen.world.clips import render_clip, sample_clip
from mediagen.world.physics import ClipSpec, Motion
from mediagen.world.score.detect import load_shape_model
from mediagen.world.score.video import score_first_frame, score_identity, score_motion, score_trajectory, track


@pytest.fixture(scope="module")
def model():
    return load_shape_model()


@pytest.fixture(scope="module")
def slide():
    """A red cube sliding right past a resting blue sphere, no pan."""
    scene = SceneSpec(objects=[ObjectSpec("cube", "red", "large", x=-2.2, z=7.0), ObjectSpec("sphere", "blue", x=1.5, z=9.5)],
                      background="sky")  # fmt: skip
    spec = ClipSpec(scene, [Motion("slide", velocity=(3.0, 0.0, 0.0)), Motion("rest")], n_frames=8, fps=8.0)
    return render_clip(spec, 128, 128)


def test_motion_direction_is_found_and_a_reversed_clip_fails(slide, model):
    ms = motion_specs(slide)
    assert ms[0]["direction"]["horizontal"] == "right"
    frames = list(slide.images)
    tracks = track(frames, model=model)
    good = score_motion(frames, ms, slide.fps, tracks=tracks)
    assert good.correct and good.values["items"][0]["found"]["horizontal"] == "right"
    bad = score_motion(frames[::-1], ms, slide.fps, model=model)
    assert not bad.correct and bad.values["items"][0]["found"]["horizontal"] == "left"


def test_identity_is_kept_in_a_world_clip_and_lost_when_objects_change(slide, model):
    frames = list(slide.images)
    assert score_identity(frames, model=model).correct
    swapped = frames[:4] + [f[:, :, ::-1].copy() for f in frames[4:]]  # colours change halfway (RGB -> BGR)
    assert not score_identity(swapped, model=model).correct


def test_first_frame_and_trajectory(slide, model):
    frames = list(slide.images)
    assert score_first_frame(frames, frames[0]).correct
    assert not score_first_frame(frames[4:], frames[0]).correct
    assert score_trajectory(frames, frames, model=model).correct
    late = frames[:1] * 3 + frames[:-3]  # the same clip, three frames late
    assert not score_trajectory(late, frames, model=model).correct
    with pytest.raises(RequestError, match="frame count"):
        score_trajectory(frames[:4], frames, model=model)


def test_sampled_clips_move_as_their_captions_say(model):
    rng = np.random.default_rng(3)
    checked = 0
    while checked < 2:
        spec = sample_clip(rng, n_frames=16, pan_prob=0.0, figure_prob=0.0, n_objects=1,
                           motion_probs={"rest": 0.0, "fall": 0.0, "bounce": 0.0})  # fmt: skip
        clip = render_clip(spec, 128, 128)
        ms = motion_specs(clip)
        if not ms[0]["direction"]:
            continue
        checked += 1
        frames = list(clip.images)
        assert score_motion(frames, ms, clip.fps, model=model).correct
        a, b = ms[0]["segment"]
        backwards = frames[:a] + frames[a : b + 1][::-1] + frames[b + 1 :]  # the stated motion played backwards
        assert not score_motion(backwards, ms, clip.fps, model=model).correct
