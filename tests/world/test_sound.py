"""Tests of world impact sounds and clip sound tracks."""

from __future__ import annotations

import numpy as np
import pytest

from mediagen.errors import RequestError
from mediagen.world.clips import sample_clip
from mediagen.world.physics import ClipSpec, Motion, simulate
from mediagen.world.sound import event_spans, impact_sound, render_soundtrack, sound_length
from mediagen.world.spec import Camera, FigureSpec, ObjectSpec, SceneSpec

SR = 16000


def _spec(objects, motions, n_frames=24, fps=8.0, figures=(), pan=0.0) -> ClipSpec:
    """A clip on the default camera."""
    scene = SceneSpec(objects=list(objects), figures=list(figures), camera=Camera(), background="sky")
    return ClipSpec(scene, list(motions), n_frames, fps, pan, seed=5)


def _dominant(x: np.ndarray) -> float:
    """Frequency (Hz) of the largest spectral peak."""
    spec = np.abs(np.fft.rfft(x, 1 << 16))
    return float(np.fft.rfftfreq(1 << 16, 1.0 / SR)[spec.argmax()])


def _ring_time(x: np.ndarray, level: float = 0.01) -> float:
    """Seconds until the 5 ms envelope falls for good below `level` times its peak."""
    env = np.sqrt(np.convolve(x.astype(np.float64) ** 2, np.ones(80) / 80, mode="same"))
    return float(np.flatnonzero(env > level * env.max())[-1] / SR)


def _onsets(track: np.ndarray, hop: int = 80, win: int = 256) -> np.ndarray:
    """Times (s) of onsets: frames whose spectrum gains new energy (positive spectral flux) over the last 20 ms."""
    x = np.pad(track.astype(np.float64), (win, win))
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop] * np.hanning(win)  # (F, win)
    mag = np.abs(np.fft.rfft(frames, axis=1))  # (F, win // 2 + 1)
    past = np.stack([np.roll(mag, k, axis=0) for k in range(1, 5)]).max(axis=0)
    past[:4] = 0.0
    flux = np.maximum(mag - 2.0 * past, 0.0).sum(axis=1)
    hit = (flux > 0.25 * mag.sum(axis=1)) & (mag.sum(axis=1) > 1e-3)
    return (np.flatnonzero(hit) * hop - win + win // 2) / SR


def test_every_event_has_an_onset_within_a_frame_and_silence_elsewhere():
    objs = [
        ObjectSpec("cube", "gray", "medium", "metal", x=-1.0, z=7.0, y=2.0),
        ObjectSpec("sphere", "red", "small", "matte", x=-0.2, z=6.0),
        ObjectSpec("cylinder", "blue", "large", "matte", x=1.6, z=6.0),
    ]
    motions = [Motion("fall", start=0.8), Motion("roll", (2.5, 0.0, 0.0)), Motion("rest")]
    figs = [FigureSpec("walking", x=-1.5, z=9.5)]
    spec = _spec(objs, motions + [Motion("walk", (0.9, 0.0, 0.0))], figures=figs)
    sim = simulate(spec)
    kinds = {e.kind for e in sim.events}
    assert {"floor", "collision", "footstep"} <= kinds
    track = render_soundtrack(sim, SR)
    assert track.dtype == np.float32 and len(track) == 3 * SR
    onsets = _onsets(track)
    for e in sim.events:
        assert np.min(np.abs(onsets - e.frame / spec.fps)) <= 1.0 / spec.fps, e
    # exactly zero before the first event and wherever no event's sound rings
    first = min(e.frame for e in sim.events)
    assert first > 0 and not track[: int(first / spec.fps * SR)].any()
    ringing = np.zeros(len(track), dtype=bool)
    for a, b in event_spans(sim, SR):
        ringing[a:b] = True
    assert (~ringing).sum() > 0 and not track[~ringing].any()


def test_sampled_clip_sounds_start_on_their_frames():
    rng = np.random.default_rng(11)
    n_events = n_clean = 0
    for _ in range(6):
        sim = simulate(sample_clip(rng, n_frames=24))
        fps = sim.spec.fps
        track = render_soundtrack(sim, SR)
        onsets = _onsets(track)
        spans = event_spans(sim, SR)
        for e, (a, b) in zip(sim.events, spans):
            assert a == round(e.frame / fps * SR) and abs(e.time - e.frame / fps) <= 0.5 / fps + 1e-9
            assert np.min(np.abs(onsets - e.frame / fps)) <= 1.0 / fps, e
            assert np.abs(track[a : a + 80]).max() > 0  # sounding within 5 ms of its frame
            if a >= 800 and not track[a - 800 : a].any():  # out of silence: starts exactly on its frame
                n_clean += 1
            n_events += 1
        silent = np.ones(len(track), dtype=bool)
        for a, b in spans:
            silent[a:b] = False
        assert not track[silent].any()
    assert n_events >= 10 and n_clean >= 3


def test_no_events_means_exact_silence():
    spec = _spec([ObjectSpec("cube", "red", x=0.0, z=7.0)], [Motion("rest")], pan=4.0)
    track = render_soundtrack(simulate(spec), SR)
    assert len(track) == 3 * SR and not track.any()


@pytest.mark.parametrize("material", ["metal", "matte"])
def test_smaller_objects_sound_higher(material):
    f = [_dominant(impact_sound(material, s, 3.0, "cube", SR)) for s in ("small", "medium", "large")]
    assert f[0] > f[1] > f[2]
    assert f[0] / f[2] == pytest.approx(0.72 / 0.36, rel=0.05)


def test_metal_rings_longer_than_matte():
    for size in ("small", "medium", "large"):
        metal = impact_sound("metal", size, 3.0, "sphere", SR)
        matte = impact_sound("matte", size, 3.0, "sphere", SR)
        assert _ring_time(metal) > 5 * _ring_time(matte)
        assert len(metal) == sound_length("metal", size, "sphere", SR) > len(matte)
    assert _dominant(impact_sound("metal", "medium", 3.0)) > 3 * _dominant(impact_sound("matte", "medium", 3.0))


def test_metal_partials_are_inharmonic():
    x = impact_sound("metal", "medium", 3.0, "sphere", SR)
    spec = np.abs(np.fft.rfft(x, 1 << 16))
    freqs = np.fft.rfftfreq(1 << 16, 1.0 / SR)
    f0 = _dominant(x)
    peaks = [freqs[i] for i in range(1, len(spec) - 1)
             if spec[i] > spec[i - 1] and spec[i] > spec[i + 1] and spec[i] > 0.05 * spec.max()]  # fmt: skip
    ratios = [p / f0 for p in peaks if p > 1.5 * f0]
    assert ratios and all(abs(r - round(r)) > 0.15 for r in ratios)


def test_loudness_grows_with_impact_speed_and_is_deterministic():
    soft = impact_sound("matte", "medium", 0.5, rng=np.random.default_rng(1))
    hard = impact_sound("matte", "medium", 6.0, rng=np.random.default_rng(1))
    assert np.abs(hard).max() > 3 * np.abs(soft).max()
    assert np.array_equal(hard, impact_sound("matte", "medium", 6.0, rng=np.random.default_rng(1)))
    sim = simulate(sample_clip(np.random.default_rng(4)))
    assert np.array_equal(render_soundtrack(sim), render_soundtrack(sim))
    assert len(render_soundtrack(sim, 22050)) == round(sim.spec.duration * 22050)


def test_bad_sound_input_is_rejected():
    with pytest.raises(RequestError, match="sample_rate"):
        impact_sound("metal", "small", 1.0, sample_rate=1000)
    with pytest.raises(RequestError, match="material"):
        impact_sound("glass", "small", 1.0)
    with pytest.raises(RequestError, match="speed"):
        impact_sound("metal", "small", float("nan"))
