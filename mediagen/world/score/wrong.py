"""Deliberately wrong scenes for a prompt record: the negative half of validating a scorer.

Each corruption breaks exactly what its category tests: a wrong shape, a wrong colour, swapped colours
(attribute binding), one object fewer or more, or the two objects' positions swapped.
"""

from __future__ import annotations

import copy
from types import MappingProxyType
from typing import Any

import numpy as np

from mediagen.world.sample import place
from mediagen.world.spec import COLORS, SHAPES, SceneSpec

CORRUPTIONS = ("shape", "color", "swap_colors", "count", "swap_position")
DEFAULT_CORRUPTION = MappingProxyType({
    "single_object": "shape",
    "two_object": "shape",
    "counting": "count",
    "colors": "color",
    "position": "swap_position",
    "color_attr": "swap_colors",
})


def _groups(meta: dict[str, Any]) -> list[range]:
    """Indices into spec.objects of each include entry (spec_from_prompt_meta keeps include order)."""
    out, k = [], 0
    for inc in meta.get("include", []):
        n = int(inc.get("count", 1))
        out.append(range(k, k + n))
        k += n
    return out


def wrong_spec(meta: dict[str, Any], spec: SceneSpec, kind: str, rng: np.random.Generator) -> SceneSpec:
    """A copy of `spec` (built by `spec_from_prompt_meta(meta)`) that violates `meta` in the way `kind` names."""
    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {kind!r}; expected one of {', '.join(CORRUPTIONS)}")
    out = copy.deepcopy(spec)
    groups = _groups(meta)
    inc = meta["include"]
    if kind == "shape":
        asked = {i["class"] for i in inc}
        g = int(rng.integers(len(groups)))
        new = str(rng.choice([s for s in SHAPES if s not in asked]))
        for i in groups[g]:
            out.objects[i].shape = new
    elif kind == "color":
        g = next((k for k, i in enumerate(inc) if "color" in i), 0)
        old = inc[g].get("color", out.objects[groups[g][0]].color)
        taken = {i.get("color") for i in inc}
        new = str(rng.choice([c for c in COLORS if c != old and c not in taken]))
        for i in groups[g]:
            out.objects[i].color = new
    elif kind == "swap_colors":
        if len(groups) < 2:
            raise ValueError("swap_colors needs two include entries")
        a, b = groups[0][0], groups[1][0]
        out.objects[a].color, out.objects[b].color = out.objects[b].color, out.objects[a].color
    elif kind == "count":
        g = groups[0]
        extra = copy.deepcopy(out.objects[g[0]])
        fewer = len(g) > 1 and rng.random() < 0.5
        if not fewer and place(rng, out.camera, extra, out.objects, out.aspect, tries=200):
            out.objects.append(extra)
        elif len(g) > 1:
            del out.objects[g[-1]]
        else:
            raise ValueError("no room to add an object, and removing the only one leaves nothing to count")
    else:  # swap_position
        if len(groups) < 2:
            raise ValueError("swap_position needs two include entries")
        a, b = out.objects[groups[0][0]], out.objects[groups[1][0]]
        a.x, b.x, a.z, b.z = b.x, a.x, b.z, a.z
    return out
