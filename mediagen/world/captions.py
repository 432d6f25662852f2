"""Captions of world scenes, GenEval-style prompt records, scenes built from them, and GT checks.

Positions are judged in the image plane from box centres, with GenEval's rule (`relative_position`).
On this ground-plane world "above" means higher in the image, i.e. farther from the camera (behind),
and "below" means lower in the image (in front). "in front of" / "behind" compare camera depths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from mediagen.world.figures import facing_word
from mediagen.world.render import Render, render_scene
from mediagen.world.sample import Z_RANGE, fits, place, place_all, sample_camera
from mediagen.world.spec import BACKGROUNDS, COLORS, MATERIALS, SHAPES, SIZES, ObjectSpec, SceneSpec
from mediagen.world.splits import HELDOUT_COMBOS, HELDOUT_TEMPLATES, is_heldout_combo

POSITION_THRESHOLD = 0.1  # GenEval's box-size margin when judging positions
CAPTION_THRESHOLD = 0.18  # stricter margin before a caption states a position
SCENE_GAP = 0.15  # box centres of a prompt's positioned pair lie this share of the image apart in the judged axis
DEPTH_MARGIN = 1.0  # world units of camera depth before "in front of" / "behind" is stated
GENEVAL_TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
IMAGE_RELATIONS = ("left of", "right of", "above", "below")

SHAPE_WORDS = MappingProxyType({
    "sphere": (("sphere", "spheres"), ("ball", "balls"), ("orb", "orbs")),
    "cube": (("cube", "cubes"), ("box", "boxes"), ("block", "blocks")),
    "cylinder": (("cylinder", "cylinders"), ("can", "cans"), ("drum", "drums")),
    "cone": (("cone", "cones"),),
    "pyramid": (("pyramid", "pyramids"),),
})
SIZE_WORDS = MappingProxyType(
    {"small": ("small", "little", "tiny"), "medium": ("medium", "medium-sized"), "large": ("large", "big")}
)
MATERIAL_WORDS = MappingProxyType({"matte": ("matte", "rubber"), "metal": ("metal", "metallic", "shiny")})
PATTERN_WORDS = MappingProxyType(
    {"stripes": ("stripes",), "checks": ("checks", "squares"), "dots": ("dots", "polka dots")}
)
RELATION_WORDS = MappingProxyType({
    "left of": ("left of", "to the left of", "on the left of"),
    "right of": ("right of", "to the right of", "on the right of"),
    "above": ("above", "higher up than"),
    "below": ("below", "lower down than"),
    "in front of": ("in front of", "closer to the camera than"),
    "behind": ("behind", "farther away than"),
    "on top of": ("on top of", "on", "resting on", "stacked on top of"),
})
POSE_WORDS = MappingProxyType({
    "standing": ("standing", "standing still"),
    "walking": ("walking", "taking a step"),
    "waving": ("waving", "waving a hand"),
    "arms_up": ("with both arms raised", "raising both arms"),
    "arms_out": ("with arms stretched out", "with outstretched arms"),
    "pointing": ("pointing", "pointing forward"),
    "sitting": ("sitting", "sitting down"),
    "jumping": ("jumping", "leaping"),
})
FIGURE_WORDS = ("stick figure", "figure", "person", "mannequin")
BACKGROUND_WORDS = MappingProxyType({
    "sky": ("under a blue sky", "on a sunny day"),
    "dusk": ("at dusk", "under a sunset sky"),
    "overcast": ("under a cloudy sky", "on an overcast day"),
    "studio": ("in a gray studio", "against a light gray wall"),
    "beige": ("against a beige wall", "in a beige room"),
    "slate": ("against a blue-gray wall", "in a slate-gray room"),
})
COUNT_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TRAIN_TEMPLATES = (
    "{}", "{}", "an image of {}", "a render of {}", "a 3d render of {}", "a scene with {}",
    "a rendering of {}", "a simple scene with {}", "a computer graphics scene of {}", "there is {}",
)  # fmt: skip


@dataclass
class Caption:
    """A caption and the constraint it states (see `check_caption`)."""

    text: str
    structured: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- relations


def relative_position(box_a, box_b, threshold: float = POSITION_THRESHOLD) -> set[str]:
    """GenEval's relations of box a to box b ((x0, y0, x1, y1) each) in the image plane."""
    a, b = np.asarray(box_a, dtype=np.float64), np.asarray(box_b, dtype=np.float64)
    ca, cb = (a[:2] + a[2:]) / 2.0, (b[:2] + b[2:]) / 2.0
    offset = ca - cb
    dims = np.abs(a[2:] - a[:2]) + np.abs(b[2:] - b[:2])
    revised = np.maximum(np.abs(offset) - threshold * dims, 0.0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    rels = set()
    if dx < -0.5:
        rels.add("left of")
    if dx > 0.5:
        rels.add("right of")
    if dy < -0.5:
        rels.add("above")
    if dy > 0.5:
        rels.add("below")
    return rels


def relations_between(a, b, threshold: float = CAPTION_THRESHOLD) -> set[str]:
    """Relations of rendered item a to item b (ObjectInfo): image-plane ones plus depth order."""
    if a.box is None or b.box is None:
        return set()
    rels = relative_position(a.box, b.box, threshold)
    margin = DEPTH_MARGIN * threshold / CAPTION_THRESHOLD
    if a.depth < b.depth - margin:
        rels.add("in front of")
    if a.depth > b.depth + margin:
        rels.add("behind")
    if a.kind == b.kind == "object" and a.on_top_of(b):
        rels.add("on top of")
    return rels


# ----------------------------------------------------------------------------- phrases


def _pick(rng: np.random.Generator, options):
    """One element of a sequence."""
    return options[int(rng.integers(len(options)))]


def _article(word: str) -> str:
    """'a' or 'an' for the following word."""
    return "an" if word[0] in "aeio" else "a"


def _join(parts: list[str], rng: np.random.Generator) -> str:
    """'A', 'A and B', 'A, B and C' (sometimes with a serial comma)."""
    if len(parts) <= 1:
        return "".join(parts)
    sep = ", and " if len(parts) > 2 and rng.random() < 0.3 else " and "
    return ", ".join(parts[:-1]) + sep + parts[-1]


def _group_constraint(objs: list[ObjectSpec], rng: np.random.Generator) -> dict[str, Any]:
    """The attributes a caption states for a group of objects sharing shape and colour."""
    first = objs[0]
    c: dict[str, Any] = {"class": first.shape, "color": first.color, "count": len(objs)}
    if len({o.size for o in objs}) == 1 and rng.random() < 0.45:
        c["size"] = first.size
    if len({o.material for o in objs}) == 1 and rng.random() < 0.4:
        c["material"] = first.material
    pats = {(o.pattern, o.pattern_color) for o in objs}
    if len(pats) == 1 and first.pattern != "none" and rng.random() < 0.75:
        c["pattern"], c["pattern_color"] = first.pattern, first.pattern_color
    return c


def _noun_phrase(c: dict[str, Any], rng: np.random.Generator, definite: bool = False) -> str:
    """Words for a constraint: 'two small red cubes', 'a shiny blue ball with white dots', 'the red cube'."""
    n = c["count"]
    noun = _pick(rng, SHAPE_WORDS[c["class"]])[0 if n == 1 else 1]
    adj = []
    if "size" in c:
        adj.append(_pick(rng, SIZE_WORDS[c["size"]]))
    adj.append(c["color"])
    if "material" in c:
        adj.append(_pick(rng, MATERIAL_WORDS[c["material"]]))
    words = " ".join(adj + [noun])
    if "pattern" in c:
        words += f" with {c['pattern_color']} {_pick(rng, PATTERN_WORDS[c['pattern']])}"
    if definite:
        return f"the {words}"
    if n == 1:
        lead = _article(words) if rng.random() < 0.85 else _pick(rng, ("one", "a single"))
        return f"{lead} {words}"
    count = COUNT_WORDS[n] if rng.random() < 0.9 else str(n)
    return f"{count} {words}"


def _figure_phrase(f: dict[str, Any], rng: np.random.Generator, definite: bool = False) -> str:
    """Words for a figure: 'a red stick figure waving'."""
    noun = f"{f['color']} {f['noun']}"
    if definite:
        return f"the {noun}"
    text = f"{_article(noun)} {noun} {_pick(rng, POSE_WORDS[f['pose']])}"
    if "facing" in f:
        text += f" facing {f['facing']}"
    return text


# ----------------------------------------------------------------------------- describe


def _render_for(spec: SceneSpec) -> Render:
    """A small render of the spec for judging positions."""
    return render_scene(spec, max(16, round(128 * spec.aspect)), 128, antialias=False)


def _pick_relations(ents: list[dict], infos: list, rng: np.random.Generator, k: int) -> list[dict[str, Any]]:
    """Up to k true relations between single entities ({'subject', 'relation', 'object'})."""
    singles = [i for i, e in enumerate(ents) if e["count"] == 1 and infos[i][0].box is not None]
    pairs = [(a, b) for a in singles for b in singles if a != b]
    rng.shuffle(pairs)
    pairs.sort(key=lambda ab: not infos[ab[0]][0].on_top_of(infos[ab[1]][0]))  # stacked pairs first
    out: list[dict[str, Any]] = []
    used: set[frozenset] = set()
    for a, b in pairs:
        if len(out) >= k or frozenset((a, b)) in used:
            continue
        rels = sorted(relations_between(infos[a][0], infos[b][0]))
        if not rels:
            continue
        image = [r for r in rels if r in IMAGE_RELATIONS]
        if "on top of" in rels and rng.random() < 0.85:
            pool = ["on top of"]
        else:
            pool = image if image and rng.random() < 0.75 else rels
        out.append({"subject": a, "relation": _pick(rng, pool), "object": b})
        used.add(frozenset((a, b)))
    return out


def describe(spec: SceneSpec, rng: np.random.Generator, render: Render | None = None, split: str = "train",
             relation_prob: float = 0.7, background_prob: float = 0.3) -> Caption:
    """A varied caption stating every object group with its count and colour, often with positions."""
    r = render if render is not None else _render_for(spec)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, o in enumerate(spec.objects):
        groups.setdefault((o.shape, o.color), []).append(i)
    keys = list(groups)
    rng.shuffle(keys)
    consts = [_group_constraint([spec.objects[i] for i in groups[k]], rng) for k in keys]
    figs = []
    for f in spec.figures:
        d = {"color": f.color, "pose": f.pose, "noun": _pick(rng, FIGURE_WORDS), "count": 1}
        if rng.random() < 0.3:
            d["facing"] = facing_word(f.facing)
        figs.append(d)
    n_obj = len(spec.objects)
    infos = [[r.objects[i] for i in groups[k]] for k in keys] + [[r.objects[n_obj + j]] for j in range(len(figs))]
    ents = consts + figs
    rels = _pick_relations(ents, infos, rng, 1 + int(rng.random() < 0.25)) if rng.random() < relation_prob else []
    bg = spec.background if rng.random() < background_prob else None
    text = _compose(ents, len(consts), rels, bg, rng, split)
    structured = {
        "objects": consts,
        "figures": [{k: v for k, v in f.items() if k in ("color", "pose")} for f in figs],
        "relations": [_entity_relation(x, len(consts)) for x in rels],
        "exhaustive": True,
        "background": bg,
    }
    return Caption(text, structured)


def _entity_relation(rel: dict[str, Any], n_groups: int) -> dict[str, Any]:
    """A relation between entity indices as (kind, index) references."""

    def ref(i: int) -> list:
        return ["object", i] if i < n_groups else ["figure", i - n_groups]

    return {"subject": ref(rel["subject"]), "relation": rel["relation"], "object": ref(rel["object"])}


def _phrase(ent: dict[str, Any], is_fig: bool, rng: np.random.Generator, definite: bool = False) -> str:
    """Noun phrase of an object group or figure entity."""
    return _figure_phrase(ent, rng, definite) if is_fig else _noun_phrase(ent, rng, definite)


def _compose(ents, n_groups, rels, bg, rng: np.random.Generator, split: str) -> str:
    """Assemble the sentence(s) from entity phrases, relations and an optional background phrase."""
    is_fig = [i >= n_groups for i in range(len(ents))]
    bg_text = f" {_pick(rng, BACKGROUND_WORDS[bg])}" if bg else ""
    style = rng.random()
    if rels and style < 0.45:
        first = rels[0]
        a, b = first["subject"], first["object"]
        head = f"{_phrase(ents[a], is_fig[a], rng)} {_pick(rng, RELATION_WORDS[first['relation']])} " + (
            _phrase(ents[b], is_fig[b], rng)
        )
        rest = [_phrase(e, is_fig[i], rng) for i, e in enumerate(ents) if i not in (a, b)]
        body = head + (f", {_pick(rng, ('with', 'along with', 'next to'))} {_join(rest, rng)}" if rest else "")
        extra = rels[1:]
    else:
        body = _join([_phrase(e, is_fig[i], rng) for i, e in enumerate(ents)], rng)
        if not rels and n_groups == len(ents) and rng.random() < 0.15:
            total = sum(e["count"] for e in ents[:n_groups])
            body = f"{COUNT_WORDS[total]} object{'s' if total > 1 else ''}: {body}"
        extra = rels
    template = _template(rng, split)
    if template == "there is {}" and not body.startswith(("a ", "an ", "one ")):
        template = "there are {}"
    sentences = [template.format(body + bg_text)]
    for x in extra:
        a, b = x["subject"], x["object"]
        sentences.append(
            f"{_phrase(ents[a], is_fig[a], rng, True)} {_verb_relation(x['relation'], is_fig[a], rng)} "
            f"{_phrase(ents[b], is_fig[b], rng, True)}"
        )
    if rng.random() < 0.5:
        sentences = [t[0].upper() + t[1:] for t in sentences]
    return ". ".join(sentences) + ("." if rng.random() < 0.6 else "")


def _verb_relation(rel: str, figure: bool, rng: np.random.Generator) -> str:
    """'is left of', 'sits to the right of', 'rests on', ... for a relation sentence."""
    if rel == "on top of":
        return _pick(rng, ("is on top of", "sits on top of", "rests on", "is stacked on", "stands on"))
    verb = "is" if figure else _pick(rng, ("is", "is", "sits", "stands"))
    return f"{verb} {_pick(rng, RELATION_WORDS[rel])}"


def _template(rng: np.random.Generator, split: str) -> str:
    """A phrasing template; test captions use a held-out one half of the time."""
    if split == "test" and rng.random() < 0.5:
        return _pick(rng, HELDOUT_TEMPLATES)
    return _pick(rng, TRAIN_TEMPLATES)


# ----------------------------------------------------------------------------- checks


def _matches(c: dict[str, Any], info) -> bool:
    """True when a rendered object has every attribute a constraint states."""
    return (
        info.kind == "object"
        and info.shape == c["class"]
        and all(getattr(info, k) == c[k] for k in ("color", "size", "material", "pattern") if k in c)
    )


def check_caption(structured: dict[str, Any], render: Render, threshold: float = POSITION_THRESHOLD) -> list[str]:
    """Every way the render contradicts a caption's structured form (empty list = consistent)."""
    problems = []
    objs = [o for o in render.objects if o.kind == "object"]
    figs = [o for o in render.objects if o.kind == "figure"]
    found = {}
    for i, c in enumerate(structured["objects"]):
        found[("object", i)] = m = [o for o in objs if _matches(c, o)]
        if len(m) != c["count"]:
            problems.append(f"{c}: {len(m)} in the scene")
        if "pattern_color" in c and any(render.spec.objects[o.id - 1].pattern_color != c["pattern_color"] for o in m):
            problems.append(f"{c}: pattern colour differs")
    for j, f in enumerate(structured.get("figures", [])):
        found[("figure", j)] = m = [o for o in figs if o.color == f["color"]]
        if not any(render.spec.figures[o.id - len(objs) - 1].pose == f["pose"] for o in m):
            problems.append(f"figure {f}: not in the scene")
    if structured.get("exhaustive"):
        if len(objs) != sum(c["count"] for c in structured["objects"]):
            problems.append("the scene has objects the caption does not state")
        if len(figs) != len(structured.get("figures", [])):
            problems.append("figure count differs")
    for rel in structured.get("relations", []):
        subj, obj = found.get(tuple(rel["subject"]), []), found.get(tuple(rel["object"]), [])
        ok = subj and obj and all(rel["relation"] in relations_between(a, b, threshold) for a in subj for b in obj)
        if not ok:
            problems.append(f"relation {rel} does not hold")
    return problems


def check_meta(meta: dict[str, Any], render: Render) -> bool:
    """GenEval's correctness rule for a prompt record, judged on the render's ground truth."""
    objs = [o for o in render.objects if o.kind == "object" and o.area > 0]
    for inc in meta.get("include", []):
        found = [o for o in objs if o.shape == inc["class"]]
        if len(found) < inc.get("count", 1):
            return False
        if "color" in inc and sum(o.color == inc["color"] for o in found) < inc.get("count", 1):
            return False
        if "position" in inc:
            rel, idx = inc["position"]
            targets = [o for o in objs if o.shape == meta["include"][idx]["class"]]
            if not targets:
                return False
            for o in found[: inc.get("count", 1)]:
                if any(rel not in relative_position(o.box, t.box) for t in targets):
                    return False
    for exc in meta.get("exclude", []):
        if sum(o.shape == exc["class"] for o in objs) >= exc["count"]:
            return False
    return True


# ----------------------------------------------------------------------------- GenEval-style prompts


def _prompt_text(body: str, rng: np.random.Generator, split: str) -> str:
    """Prompt wording: held-out phrasings for the test split, training phrasings otherwise."""
    if split == "test":
        return _pick(rng, HELDOUT_TEMPLATES[:1] * 3 + HELDOUT_TEMPLATES[1:]).format(body)
    return _pick(rng, TRAIN_TEMPLATES[2:]).format(body)


def _color_for(shape: str, rng: np.random.Generator, split: str, heldout_prob: float = 0.35) -> str:
    """A colour for a shape: never a held-out pair in train; often one in test when the shape has one."""
    held = [c for c, s in HELDOUT_COMBOS if s == shape]
    if split == "test" and held and rng.random() < heldout_prob:
        return _pick(rng, held)
    allowed = [c for c in COLORS if split == "test" or not is_heldout_combo(c, shape)]
    return _pick(rng, allowed)


def _a(word: str) -> str:
    """'a word' / 'an word'."""
    return f"{_article(word)} {word}"


def make_geneval_prompts(tag: str, n: int, rng: np.random.Generator, split: str = "test") -> list[dict[str, Any]]:
    """n GenEval-style records {'tag', 'include', ['exclude'], 'prompt', 'heldout'} in the world's vocabulary."""
    if tag not in GENEVAL_TAGS:
        raise ValueError(f"unknown tag {tag!r}; expected one of {', '.join(GENEVAL_TAGS)}")
    out = []
    for _ in range(n):
        rec = _geneval_record(tag, rng, split)
        combos = [(i["color"], i["class"]) for i in rec["include"] if "color" in i]
        rec["heldout"] = {
            "phrasing": split == "test",
            "combo": any(is_heldout_combo(c, s) for c, s in combos),
        }
        out.append(rec)
    return out


def _geneval_record(tag: str, rng: np.random.Generator, split: str) -> dict[str, Any]:
    """One record of the given tag (without the 'heldout' field)."""
    a, b = (str(s) for s in rng.choice(SHAPES, size=2, replace=False))
    if tag == "single_object":
        return {"tag": tag, "include": [{"class": a, "count": 1}], "prompt": _prompt_text(_a(a), rng, split)}
    if tag == "two_object":
        inc = [{"class": a, "count": 1}, {"class": b, "count": 1}]
        return {"tag": tag, "include": inc, "prompt": _prompt_text(f"{_a(a)} and {_a(b)}", rng, split)}
    if tag == "counting":
        k = int(rng.integers(2, 5))
        body = f"{COUNT_WORDS[k]} {SHAPE_WORDS[a][0][1]}"
        rec = {"tag": tag, "include": [{"class": a, "count": k}], "exclude": [{"class": a, "count": k + 1}]}
        return rec | {"prompt": _prompt_text(body, rng, split)}
    if tag == "colors":
        c = _color_for(a, rng, split)
        inc = [{"class": a, "count": 1, "color": c}]
        return {"tag": tag, "include": inc, "prompt": _prompt_text(_a(f"{c} {a}"), rng, split)}
    if tag == "position":
        rel = _pick(rng, IMAGE_RELATIONS)
        inc = [{"class": b, "count": 1}, {"class": a, "count": 1, "position": [rel, 0]}]
        return {"tag": tag, "include": inc, "prompt": _prompt_text(f"{_a(a)} {rel} {_a(b)}", rng, split)}
    ca = _color_for(a, rng, split)
    cb = _pick(rng, [c for c in COLORS if c != ca and (split == "test" or not is_heldout_combo(c, b))])
    inc = [{"class": a, "count": 1, "color": ca}, {"class": b, "count": 1, "color": cb}]
    return {"tag": tag, "include": inc, "prompt": _prompt_text(f"{_a(f'{ca} {a}')} and {_a(f'{cb} {b}')}", rng, split)}


# ----------------------------------------------------------------------------- scenes from prompt records


def _objects_for(meta: dict[str, Any], rng: np.random.Generator) -> list[list[ObjectSpec]]:
    """Objects for each include entry (count copies, the stated colour or a random one)."""
    out = []
    for inc in meta.get("include", []):
        group = []
        for _ in range(inc.get("count", 1)):
            group.append(
                ObjectSpec(
                    shape=inc["class"],
                    color=inc.get("color") or _pick(rng, COLORS),
                    size=_pick(rng, SIZES[1:] if "position" in inc or meta.get("tag") == "position" else SIZES),
                    material=_pick(rng, MATERIALS),
                    rotation=round(float(rng.uniform(0, math.pi / 2)), 4),
                )
            )
        out.append(group)
    return out


def _place_relative(rng: np.random.Generator, cam, item: ObjectSpec, ref: ObjectSpec, rel: str, placed: list,
                    aspect: float, tries: int = 80) -> bool:
    """Put `item` so that it is `rel` of `ref` in the image plane; False when no spot fits."""
    for _ in range(tries):
        if rel in ("left of", "right of"):
            sign = -1.0 if rel == "left of" else 1.0
            item.z = float(np.clip(ref.z + rng.uniform(-0.5, 0.5), *Z_RANGE))
            item.x = ref.x + sign * float(rng.uniform(1.3, 3.2))
        else:
            sign = 1.0 if rel == "above" else -1.0
            item.z = ref.z + sign * float(rng.uniform(2.5, 4.5))
            item.x = ref.x + float(rng.uniform(-0.6, 0.6))
        item.x, item.z = round(item.x, 3), round(item.z, 3)
        if Z_RANGE[0] - 0.5 <= item.z <= Z_RANGE[1] + 1.0 and fits(cam, item, placed, aspect):
            return True
    return False


def spec_from_prompt_meta(meta: dict[str, Any], rng: np.random.Generator, aspect: float = 1.0,
                          background: str | None = None, tries: int = 200) -> SceneSpec:
    """A scene satisfying a GenEval-style record (checked on a render with `check_meta`)."""
    for _ in range(tries):
        cam = sample_camera(rng)
        groups = _objects_for(meta, rng)
        flat = [o for g in groups for o in g]
        pos = [(i, inc["position"]) for i, inc in enumerate(meta.get("include", [])) if "position" in inc]
        if pos:
            i, (rel, idx) = pos[0]
            ref, item = groups[idx][0], groups[i][0]
            others = [o for o in flat if o is not ref and o is not item]
            ok = place_all(rng, cam, [ref], aspect) and _place_relative(rng, cam, item, ref, rel, [ref], aspect)
            ok = ok and _place_rest(rng, cam, others, [ref, item], aspect)
        else:
            ok = place_all(rng, cam, flat, aspect)
        if not ok:
            continue
        bg = background or _pick(rng, BACKGROUNDS)
        spec = SceneSpec(objects=flat, camera=cam, background=bg, aspect=aspect)
        r = _render_for(spec)
        if check_meta(meta, r) and all(o.visible_fraction >= 0.6 for o in r.objects) and _clear_positions(meta, r):
            return spec
    raise RuntimeError(f"could not build a scene for {meta.get('prompt', meta)!r}")


def _clear_positions(meta: dict[str, Any], render: Render) -> bool:
    """True when every stated position holds with a safe margin, not just at GenEval's: the relation holds at
    the caption margin and the box centres lie `SCENE_GAP` of the image apart in the judged axis, so that a
    judge whose boxes are a pixel off still agrees (spec_from_prompt_meta keeps include order)."""
    objs = [o for o in render.objects if o.kind == "object"]
    first = np.cumsum([0] + [int(inc.get("count", 1)) for inc in meta.get("include", [])])
    size = (render.image.shape[1], render.image.shape[0])
    for i, inc in enumerate(meta.get("include", [])):
        if "position" not in inc:
            continue
        rel, idx = inc["position"]
        axis = 0 if rel in ("left of", "right of") else 1
        for a in objs[first[i] : first[i + 1]]:
            for b in objs[first[idx] : first[idx + 1]]:
                if a.box is None or b.box is None or rel not in relative_position(a.box, b.box, CAPTION_THRESHOLD):
                    return False
                if abs(a.center[axis] - b.center[axis]) < SCENE_GAP * size[axis]:
                    return False
    return True


def _place_rest(rng: np.random.Generator, cam, items: list, placed: list, aspect: float) -> bool:
    """Place further items around already placed ones."""
    placed = list(placed)
    for it in items:
        if not place(rng, cam, it, placed, aspect):
            return False
        placed.append(it)
    return True
