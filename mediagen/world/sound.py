"""Impact sounds of the world's events and clip sound tracks in sync with the frames.

Each impact is modal synthesis (van den Doel, Kry & Pai, "FoleyAutomatic", SIGGRAPH 2001): a few
exponentially damped sinusoids whose frequencies scale inversely with the item's size, plus a short
low-passed noise burst for the contact. Metal rings long with inharmonic partials (free-bar ratios);
matte solids give a short dull thud with more noise; footsteps are a soft low thump. Loudness grows with
impact speed. Every sound is cut at -60 dB with a short fade, so the track is exactly zero away from events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from mediagen.errors import RequestError
from mediagen.world.physics import Event
from mediagen.world.spec import SIZE_RADIUS

SAMPLE_RATE = 16000
REF_RADIUS = SIZE_RADIUS["medium"]
SILENCE = 1e-3  # envelope level (-60 dB) where a sound is cut
ATTACK_S = 0.001
FADE_S = 0.01
SPEED_REF = 4.0  # m/s: impact speed giving 63% of full loudness
LOUDNESS = 0.5
PARTIAL_LIMIT = 0.45  # partials above this share of the sample rate are left out


@dataclass(frozen=True)
class Timbre:
    """Modal parameters of a material for an item of REF_RADIUS (frequencies scale as 1 / radius)."""

    f0: float  # fundamental, Hz
    ratios: tuple[float, ...]  # partial frequency / f0
    gains: tuple[float, ...]  # partial amplitude
    decay: float  # time constant (s) of the fundamental; partial k decays in decay / sqrt(ratio_k)
    noise: float  # level of the contact noise burst
    noise_decay: float  # its time constant, s
    cutoff: float  # its low-pass cutoff, Hz
    level: float = 1.0  # overall loudness


TIMBRES = MappingProxyType(
    {
        "metal": Timbre(1250.0, (1.0, 2.756, 5.404, 8.933), (1.0, 0.6, 0.4, 0.25), 0.30, 0.10, 0.002, 5000.0),
        "matte": Timbre(210.0, (1.0, 1.72, 2.61), (1.0, 0.35, 0.15), 0.028, 0.45, 0.008, 1200.0),
        "foot": Timbre(95.0, (1.0, 2.3), (1.0, 0.25), 0.022, 0.6, 0.015, 900.0, level=0.6),
    }
)
SHAPE_PITCH = MappingProxyType(
    {"sphere": 1.0, "cube": 0.9, "cylinder": 1.08, "cone": 1.2, "pyramid": 1.15, "person": 1.0}
)
SOUND_WORDS = MappingProxyType({"metal": "clang", "matte": "thud", "foot": "footstep"})


def _check_rate(sample_rate: int) -> int:
    """Validate a sample rate."""
    if not isinstance(sample_rate, (int, np.integer)) or not 8000 <= int(sample_rate) <= 96000:
        raise RequestError(f"sample_rate must be a whole number of Hz between 8000 and 96000, got {sample_rate!r}")
    return int(sample_rate)


def _timbre(material: str) -> Timbre:
    """The timbre of a material name."""
    if material not in TIMBRES:
        raise RequestError(f"unknown sound material {material!r}; expected one of {', '.join(TIMBRES)}")
    return TIMBRES[material]


def _modes(material: str, size: str, shape: str, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frequencies (K,), amplitudes (K,) and decay times (K,) of the audible modes."""
    tb = _timbre(material)
    if size not in SIZE_RADIUS:
        raise RequestError(f"unknown size {size!r}; expected one of {', '.join(SIZE_RADIUS)}")
    scale = SIZE_RADIUS[size] / REF_RADIUS
    ratios = np.asarray(tb.ratios)
    freqs = tb.f0 * SHAPE_PITCH.get(shape, 1.0) / scale * ratios
    taus = tb.decay * math.sqrt(scale) / np.sqrt(ratios)
    keep = freqs < PARTIAL_LIMIT * sample_rate
    return freqs[keep], np.asarray(tb.gains)[keep], taus[keep]


def sound_length(material: str, size: str, shape: str = "sphere", sample_rate: int = SAMPLE_RATE) -> int:
    """Samples an impact sound lasts before it is cut at SILENCE."""
    sample_rate = _check_rate(sample_rate)
    _, _, taus = _modes(material, size, shape, sample_rate)
    tb = _timbre(material)
    longest = max([*taus, tb.noise_decay]) * math.log(1.0 / SILENCE)
    return math.ceil(longest * sample_rate)


def impact_sound(material: str, size: str, speed: float, shape: str = "sphere", sample_rate: int = SAMPLE_RATE,
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """One impact (n,) float32: damped modes plus a noise burst, louder with impact speed (m/s)."""  # fmt: skip
    sample_rate = _check_rate(sample_rate)
    if not math.isfinite(speed) or speed < 0:
        raise RequestError(f"impact speed must be a finite number >= 0 m/s, got {speed}")
    rng = rng if rng is not None else np.random.default_rng(0)
    tb = _timbre(material)
    freqs, gains, taus = _modes(material, size, shape, sample_rate)
    n = sound_length(material, size, shape, sample_rate)
    t = np.arange(n) / sample_rate  # (n,)
    phases = rng.uniform(0.0, 0.25 * math.pi, size=len(freqs))
    env = np.exp(-t[None, :] / taus[:, None])  # (K, n)
    modes = gains[:, None] * env * np.sin(2 * math.pi * freqs[:, None] * t + phases[:, None])
    x = modes.sum(axis=0) / gains.sum()  # (n,)
    x += tb.noise * _noise_burst(rng, n, tb, sample_rate)
    ramp = np.minimum(1.0, t / ATTACK_S)
    fade = np.clip((n - 1 - np.arange(n)) / max(1.0, FADE_S * sample_rate), 0.0, 1.0)
    fade = 0.5 - 0.5 * np.cos(math.pi * fade)  # raised cosine down to exactly 0 on the last sample
    loud = LOUDNESS * tb.level * (1.0 - math.exp(-speed / SPEED_REF)) * math.sqrt(SIZE_RADIUS[size] / REF_RADIUS)
    return (loud * x * ramp * fade).astype(np.float32)


def _noise_burst(rng: np.random.Generator, n: int, tb: Timbre, sample_rate: int) -> np.ndarray:
    """Exponentially decaying low-passed white noise (n,) of unit variance at its start."""
    a = math.exp(-2.0 * math.pi * tb.cutoff / sample_rate)  # one-pole low-pass as a truncated FIR
    k = a ** np.arange(max(2, math.ceil(5.0 / (1.0 - a))))
    k /= np.sqrt((k * k).sum())
    m = min(n, math.ceil(tb.noise_decay * math.log(1.0 / SILENCE) * sample_rate))
    w = np.convolve(rng.standard_normal(m + len(k)), k, mode="valid")[:m]  # (m,)
    out = np.zeros(n)
    out[:m] = w * np.exp(-np.arange(m) / (tb.noise_decay * sample_rate))
    return out


def event_sound(event: Event, sample_rate: int = SAMPLE_RATE, seed: int = 0, index: int = 0) -> np.ndarray:
    """The sound (n,) float32 of one event: every item taking part rings with its own modes."""
    parts = []
    share = 1.0 if len(event.ids) == 1 else 0.8
    for j, (mat, size, shape) in enumerate(zip(event.materials, event.sizes, event.shapes)):
        rng = np.random.default_rng([int(seed) & 0x7FFFFFFF, index, j])
        parts.append(share * impact_sound(mat, size, event.speed, shape, sample_rate, rng))
    out = np.zeros(max(len(p) for p in parts), dtype=np.float32)
    for p in parts:
        out[: len(p)] += p
    return out


def onset_sample(event: Event, fps: float, sample_rate: int = SAMPLE_RATE, snap_to_frames: bool = True) -> int:
    """Sample index where an event's sound starts: its frame's time (frame / fps), or its exact time."""
    t = event.frame / fps if snap_to_frames else event.time
    return round(t * sample_rate)


def render_soundtrack(clip: Any, sample_rate: int = SAMPLE_RATE, snap_to_frames: bool = True) -> np.ndarray:
    """Mono track (round(n_frames / fps * sample_rate),) float32 of a Clip's (or Simulation's) events.

    An event shown at frame k starts at k / fps seconds (its exact contact time when not `snap_to_frames`);
    the track is exactly 0 wherever no sound rings, fades out over its last FADE_S, and a mix louder than
    0.99 is scaled down as a whole.
    """
    sample_rate = _check_rate(sample_rate)
    spec = clip.spec
    n = round(spec.n_frames * sample_rate / spec.fps)
    track = np.zeros(n, dtype=np.float32)
    for i, e in enumerate(clip.events):
        start = onset_sample(e, spec.fps, sample_rate, snap_to_frames)
        if start >= n:
            continue
        s = event_sound(e, sample_rate, spec.seed, i)[: n - start]
        track[start : start + len(s)] += s
    fade = min(n, int(FADE_S * sample_rate))
    if fade:  # a sound still ringing at the end stops without a click
        track[n - fade :] *= (0.5 + 0.5 * np.cos(np.pi * (np.arange(fade) + 1) / fade)).astype(np.float32)
    peak = float(np.abs(track).max()) if n else 0.0
    if peak > 0.99:
        track *= np.float32(0.99 / peak)
    return track


def event_spans(clip: Any, sample_rate: int = SAMPLE_RATE, snap_to_frames: bool = True) -> list[tuple[int, int]]:
    """(start, stop) sample range of each event's sound in the track (stop exclusive, clipped to the track)."""
    sample_rate = _check_rate(sample_rate)
    spec = clip.spec
    n = round(spec.n_frames * sample_rate / spec.fps)
    out = []
    for e in clip.events:
        start = onset_sample(e, spec.fps, sample_rate, snap_to_frames)
        length = max(sound_length(m, s, sh, sample_rate) for m, s, sh in zip(e.materials, e.sizes, e.shapes))
        out.append((min(start, n), min(start + length, n)))
    return out
