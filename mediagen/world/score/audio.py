"""Scores of soundtracks: impact onsets found by spectral flux against the clip's events, and silence.

Onsets are peaks of the half-wave rectified spectral flux of the log magnitude spectrum (Bello et al. 2005,
"A tutorial on onset detection in music signals"), picked above a median-based adaptive threshold. Each
event of the clip expects an onset at its frame's time; the score is the F1 of onsets matched within a
tolerance, with the mean offset of the matches reported, and the track must be silent (RMS below -50 dBFS)
wherever no event rings. No sound without an event: a track passes only when every onset it holds
matches an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mediagen.errors import RequestError

HOP_S = 0.005  # seconds between spectral frames
WIN_S = 0.02  # analysis window
MIN_GAP_S = 0.04  # two onsets closer than this are one
TOLERANCE_S = 0.05  # an onset this close to an event's time matches it
ECHO_S = 0.1  # an extra onset this soon after a matched one is the same sound's second peak
SILENCE_RMS = 10 ** (-50 / 20)


def spectral_flux(track: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """Half-wave rectified log-spectral flux (F,) of a mono track and the seconds per flux frame."""
    x = np.asarray(track, dtype=np.float64).reshape(-1)
    hop = max(1, round(HOP_S * sample_rate))
    win = max(8, round(WIN_S * sample_rate))
    if len(x) < win:
        x = np.pad(x, (0, win - len(x)))
    n = 1 + (len(x) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]  # (F, win)
    frames = x[idx] * np.hanning(win)[None, :]
    mag = np.log1p(1000.0 * np.abs(np.fft.rfft(frames, axis=1)))  # (F, bins)
    diff = np.diff(mag, axis=0, prepend=mag[:1])
    flux = np.maximum(diff, 0.0).sum(axis=1)
    return flux, hop / sample_rate


def detect_onsets(track: np.ndarray, sample_rate: int, sensitivity: float = 4.0) -> list[float]:
    """Onset times (seconds) of a mono track: local flux peaks above median + sensitivity * MAD (+ floor)."""
    flux, dt = spectral_flux(track, sample_rate)
    if not flux.any():
        return []
    med = np.median(flux)
    mad = np.median(np.abs(flux - med)) + 1e-9
    thr = max(med + sensitivity * mad, 0.05 * flux.max(), 1.0)
    gap = max(1, round(MIN_GAP_S / dt))
    out: list[float] = []
    last = -gap
    for i in range(len(flux)):
        lo, hi = max(0, i - gap), min(len(flux), i + gap + 1)
        if flux[i] >= thr and flux[i] == flux[lo:hi].max() and i - last >= gap:
            out.append(i * dt + 0.75 * WIN_S)  # the flux peaks once the onset is 3/4 into the tapered window
            last = i
    return out


def _merge_close(times: Sequence[float], gap: float = MIN_GAP_S) -> list[float]:
    """Times with those closer than `gap` to the previous kept one dropped."""
    out: list[float] = []
    for t in sorted(times):
        if not out or t - out[-1] >= gap:
            out.append(float(t))
    return out


def match_onsets(found: Sequence[float], expected: Sequence[float], tol: float = TOLERANCE_S) -> list[tuple[float, float]]:
    """Greedy one-to-one pairs (expected, found) closest first, within `tol` seconds."""
    pairs = sorted((abs(f - e), e, f) for e in expected for f in found if abs(f - e) <= tol)
    used_e: set[float] = set()
    used_f: set[float] = set()
    out = []
    for _, e, f in pairs:
        if e in used_e or f in used_f:
            continue
        used_e.add(e)
        used_f.add(f)
        out.append((e, f))
    return sorted(out)


@dataclass
class AudioScore:
    """Verdict on one soundtrack."""

    score: float
    correct: bool
    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary."""
        return {"score": self.score, "correct": self.correct, **self.values}


def quiet_share(track: np.ndarray, sample_rate: int, busy: Sequence[tuple[float, float]], window_s: float = 0.05) -> float:
    """Share of windows outside every busy span (seconds) whose RMS stays below SILENCE_RMS (1.0 if none)."""
    x = np.asarray(track, dtype=np.float64).reshape(-1)
    n = max(1, round(window_s * sample_rate))
    ok = []
    for start in range(0, len(x) - n + 1, n):
        t0, t1 = start / sample_rate, (start + n) / sample_rate
        if any(t0 < b1 and t1 > b0 for b0, b1 in busy):
            continue
        ok.append(np.sqrt(np.mean(x[start : start + n] ** 2)) < SILENCE_RMS)
    return float(np.mean(ok)) if ok else 1.0


def score_soundtrack(track: np.ndarray, sample_rate: int, event_times: Sequence[float],
                     ring_spans: Sequence[tuple[float, float]] | None = None, tol: float = TOLERANCE_S) -> AudioScore:
    """F1 of detected onsets against the events' times (seconds), times the share of silent windows
    outside the spans where sounds ring (defaults to each event time + 1 s); correct when that reaches 0.9
    and no onset lies away from every event (`stray`; a second peak within ECHO_S after a matched onset
    belongs to its sound)."""  # fmt: skip
    x = np.asarray(track, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise RequestError("the soundtrack is empty")
    if not np.isfinite(x).all():
        raise RequestError("the soundtrack holds NaN or infinite samples")
    expected = _merge_close(event_times)
    found = detect_onsets(x, sample_rate)
    pairs = match_onsets(found, expected, tol)
    matched = [f for _, f in pairs]
    found = [f for f in found if f in matched or not any(0 < f - m <= ECHO_S for m in matched)]
    if not expected and not found:
        f1 = 1.0
    else:
        p = len(pairs) / len(found) if found else 0.0
        r = len(pairs) / len(expected) if expected else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
    spans = list(ring_spans) if ring_spans is not None else [(t - tol, t + 1.0) for t in expected]
    quiet = quiet_share(x, sample_rate, [(a - tol, b + tol) for a, b in spans])
    offsets = [f - e for e, f in pairs]
    score = f1 * quiet
    stray = len(found) - len(pairs)
    values = {"f1": f1, "quiet": quiet, "expected": len(expected), "found": len(found), "stray": stray,
              "mean_offset_s": float(np.mean(offsets)) if offsets else None,
              "max_offset_s": float(np.max(np.abs(offsets))) if offsets else None}  # fmt: skip
    return AudioScore(score, score >= 0.9 and stray == 0, values)


def clip_event_times(clip: Any) -> list[float]:
    """Seconds at which each event of a world clip should sound (its frame's time)."""
    return [e.frame / clip.spec.fps for e in clip.events]
