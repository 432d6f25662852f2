"""Soundtrack scorer: onsets of world clips' impacts line up with their frames; a shifted track does not."""

from __future__ import annotations

import numpy as np
import pytest

from mediagen.errors import RequestError
from mediagen.world.clips import sample_clip
from mediagen.world.physics import simulate
from mediagen.world.score.audio import clip_event_times, detect_onsets, quiet_share, score_soundtrack
from mediagen.world.sound import SAMPLE_RATE, event_spans, impact_sound, render_soundtrack


class _Events:
    """What the sound and the scorer read of a clip: its spec and its events (no frames rendered)."""

    def __init__(self, spec):
        self.spec = spec
        self.events = simulate(spec).events


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(4)
    out = []
    while len(out) < 5:
        c = _Events(sample_clip(rng, n_frames=24, motion_probs={"fall": 0.5, "bounce": 0.3}, figure_prob=0.0))
        if c.events:
            out.append(c)
    return out


def test_onsets_of_single_impacts_are_found_where_they_start():
    track = np.zeros(3 * SAMPLE_RATE, dtype=np.float32)
    starts = [0.1, 0.55, 1.3]
    for t in starts:
        s = impact_sound("matte", "medium", 3.0)
        i = round(t * SAMPLE_RATE)
        track[i : i + len(s)] += s
    found = detect_onsets(track, SAMPLE_RATE)
    assert len(found) == 3
    assert np.allclose(found, starts, atol=0.006)
    assert detect_onsets(np.zeros(4000), SAMPLE_RATE) == []


def test_world_soundtracks_match_their_events_and_shifted_ones_do_not(clips):
    for c in clips:
        track = render_soundtrack(c)
        times = clip_event_times(c)
        spans = [(a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in event_spans(c)]
        good = score_soundtrack(track, SAMPLE_RATE, times, spans)
        assert good.correct and good.values["max_offset_s"] <= 0.02 and good.values["stray"] == 0, good.values
        shift = round(0.25 * SAMPLE_RATE)
        late = np.concatenate([np.zeros(shift, np.float32), track[:-shift]])
        bad = score_soundtrack(late, SAMPLE_RATE, times, spans)
        assert not bad.correct, bad.values


def test_sound_where_nothing_happens_is_caught():
    track = np.zeros(SAMPLE_RATE * 2, dtype=np.float32)
    assert score_soundtrack(track, SAMPLE_RATE, []).correct
    noisy = track + np.float32(0.01) * np.random.default_rng(0).standard_normal(track.shape).astype(np.float32)
    assert quiet_share(noisy, SAMPLE_RATE, []) == 0.0
    assert not score_soundtrack(noisy, SAMPLE_RATE, []).correct


def test_an_impact_where_the_clip_has_none_fails(clips):
    quiet = np.zeros(SAMPLE_RATE * 2, dtype=np.float32)
    knock = impact_sound("matte", "medium", 3.0)
    quiet[8000 : 8000 + len(knock)] += knock
    res = score_soundtrack(quiet, SAMPLE_RATE, [])
    assert not res.correct and res.values["stray"] == 1, res.values
    c = clips[0]
    track = render_soundtrack(c)
    times = clip_event_times(c)
    spans = [(a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in event_spans(c)]
    free = next(t for t in np.arange(0.1, len(track) / SAMPLE_RATE - 0.5, 0.05) if all(abs(t - e) >= 0.3 for e in times))
    extra = track.copy()
    i = round(free * SAMPLE_RATE)
    extra[i : i + len(knock)] += knock[: len(extra) - i]
    res = score_soundtrack(extra, SAMPLE_RATE, times, spans)
    assert not res.correct and res.values["stray"] >= 1, res.values


def test_bad_tracks_are_rejected():
    with pytest.raises(RequestError, match="empty"):
        score_soundtrack(np.zeros(0), SAMPLE_RATE, [])
    with pytest.raises(RequestError, match="NaN"):
        score_soundtrack(np.full(100, np.nan), SAMPLE_RATE, [])
