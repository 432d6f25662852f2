"""Prompt weighting in the common `(word:1.3)` syntax: `(a)` = x1.1, `[a]` = /1.1, `\\(` escapes."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\\\(|\\\)|\\\[|\\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|\]|[^\\()\[\]:]+|:")
UP, DOWN = 1.1, 1 / 1.1


def parse_weighted(text: str) -> list[tuple[str, float]]:
    """Split a prompt into (text, weight) runs, merging neighbours of equal weight (A1111 semantics)."""
    out: list[list] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for run in out[start:]:
            run[1] *= factor

    for m in _TOKEN.finditer(text):
        tok, weight = m.group(0), m.group(1)
        if tok.startswith("\\"):
            out.append([tok[1:], 1.0])
        elif tok == "(":
            round_open.append(len(out))
        elif tok == "[":
            square_open.append(len(out))
        elif weight is not None and round_open:
            scale(round_open.pop(), float(weight))
        elif tok == ")" and round_open:
            scale(round_open.pop(), UP)
        elif tok == "]" and square_open:
            scale(square_open.pop(), DOWN)
        else:
            out.append([tok, 1.0])
    for start in round_open:
        scale(start, UP)
    for start in square_open:
        scale(start, DOWN)
    merged: list[tuple[str, float]] = []
    for t, w in out:
        if merged and abs(merged[-1][1] - w) < 1e-9:
            merged[-1] = (merged[-1][0] + t, w)
        elif t:
            merged.append((t, w))
    return merged or [("", 1.0)]


def plain_text(text: str) -> str:
    """The prompt with weighting syntax removed."""
    return "".join(t for t, _ in parse_weighted(text))
