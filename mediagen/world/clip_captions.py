"""Captions of world clips: motion verbs, image-plane directions, speed classes, impacts and their sounds.

`motion_specs(clip)` reads the ground truth of every item from the simulation and the frames' cameras:
its verb (rolls, slides, bounces, falls, rests, walks, waves, stands), the direction of its first motion
segment (from the frame it starts moving to the first wall or collision, or to when it stops), judged in
the image plane of the first frame's camera (so a pan does not change it; none where the item shows less
than most of itself over most of that stretch, hidden behind nearer items), its speed class in image widths
per second, and its events with their sounds. `describe_clip` turns these into varied text whose
structured form `check_clip_caption` verifies against a clip.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import numpy as np

from mediagen.world.captions import FIGURE_WORDS, MATERIAL_WORDS, SHAPE_WORDS, SIZE_WORDS, Caption
from mediagen.world.clips import Clip
from mediagen.world.geometry import project

MIN_DISPLACEMENT = 0.05  # image widths an item must move in a direction before it is stated
DOMINANCE = 0.4  # a direction component is stated when at least this share of the other one
SPEED_CLASSES = (0.08, 0.22)  # image widths per second: below = slow, above = fast
MOVING_SPEED = 0.05  # m/s
MIN_TRAVEL = 0.15  # metres an object must travel to count as moving
PAN_MIN = 1.0  # degrees of pan before the camera motion is stated
VISIBLE_SHARE = 0.6  # share of its unoccluded area an item must show for a frame to show its motion ...
VISIBLE_FRAMES = 0.5  # ... in at least this share of the frames of its stretch, or its direction is not stated

VERB_WORDS = MappingProxyType({
    "rolls": ("rolls",), "slides": ("slides", "glides"), "bounces": ("bounces", "hops"),
    "falls": ("falls from above", "drops from above", "falls into view"),
    "rests": ("stands still", "rests on the floor", "sits still"),
    "walks": ("walks", "strolls"), "waves": ("waves", "waves a hand"), "stands": ("stands still", "stands"),
})  # fmt: skip
DIRECTION_WORDS = MappingProxyType({
    "left": ("to the left", "left", "leftward"), "right": ("to the right", "right", "rightward"),
    "toward": ("toward the camera", "closer to the camera"), "away": ("away from the camera", "into the distance"),
})  # fmt: skip
SPEED_WORDS = MappingProxyType({"slow": ("slowly", "gently"), "fast": ("quickly", "fast", "rapidly")})
SOUND_PHRASES = MappingProxyType({
    "clang": ("with a metallic clang", "with a ringing clang", "with a loud clang"),
    "thud": ("with a dull thud", "with a soft thud", "with a thud"),
    "footstep": ("with audible footsteps", "with soft footsteps"),
})
REPEATED_SOUND = MappingProxyType(
    {"clang": ("with repeated clangs", "clanging each time"), "thud": ("with a series of thuds",)}
)
HIT_WORDS = ("hits", "bumps into", "knocks into", "collides with")
WALL_WORDS = ("bounces off the edge of the frame", "bounces back off the edge", "rebounds off the edge of the view")
LAND_WORDS = ("lands on the floor", "hits the floor")
PAN_WORDS = MappingProxyType({
    "left": ("the camera pans left", "the camera slowly pans to the left"),
    "right": ("the camera pans right", "the camera slowly pans to the right"),
})  # fmt: skip
CLIP_TEMPLATES = ("{}", "{}", "{}", "a clip where {}", "a short video: {}", "an animation in which {}",
                  "a 3d animation: {}", "a video of a scene where {}")  # fmt: skip
HELDOUT_CLIP_TEMPLATES = ("a video in which {}", "footage where {}")


# ----------------------------------------------------------------------------- ground truth


def _event_sound(e) -> str:
    """Sound word of an event: clang when metal takes part, footstep for steps, else thud."""
    if e.kind == "footstep":
        return "footstep"
    return "clang" if "metal" in e.materials else "thud"


def _ground_pixels(clip: Clip, pos: np.ndarray) -> np.ndarray:
    """Pixel coordinates (T, 2) of floor points under world positions (T, 3), first frame's camera."""
    g = pos.copy()
    g[:, 1] = 0.0
    uv, _ = project(clip.cameras[0], g, clip.width, clip.height)
    return uv


def direction_of(du: float, dv: float, width: int) -> dict[str, str | None]:
    """Stated direction components of an image-plane displacement (du right, dv down) in pixels."""
    lim = MIN_DISPLACEMENT * width
    horizontal = depth = None
    if abs(du) >= lim and abs(du) >= DOMINANCE * abs(dv):
        horizontal = "right" if du > 0 else "left"
    if abs(dv) >= lim and abs(dv) >= DOMINANCE * abs(du):
        depth = "toward" if dv > 0 else "away"
    return {"horizontal": horizontal, "depth": depth}


def _speed_class(dist_px: float, seconds: float, width: int) -> str:
    """'slow', 'medium' or 'fast' from image widths per second."""
    rate = dist_px / width / max(seconds, 1e-9)
    return "slow" if rate < SPEED_CLASSES[0] else "fast" if rate > SPEED_CLASSES[1] else "medium"


def motion_specs(clip: Clip) -> list[dict[str, Any]]:
    """Ground-truth motion of every item (instance-id order) judged on the clip's frames."""
    spec = clip.spec
    n_obj = len(spec.scene.objects)
    T = clip.n_frames
    out = []
    for i, traj in enumerate(clip.trajectories):
        iid = i + 1
        m = spec.motions[i]
        pos, vel = traj.position, traj.velocity
        mine = [e for e in clip.events if iid in e.ids]
        events = [
            {"kind": e.kind, "frame": e.frame, "with": next((j for j in e.ids if j != iid), None),
             "sound": _event_sound(e)}
            for e in mine
        ]  # fmt: skip
        hspeed = np.hypot(vel[:, 0], vel[:, 2])  # (T,)
        travel = float(np.max(np.hypot(pos[:, 0] - pos[0, 0], pos[:, 2] - pos[0, 2])))
        if i < n_obj:
            o = spec.scene.objects[i]
            attrs = {"shape": o.shape, "color": o.color, "size": o.size, "material": o.material}
            moves = travel > MIN_TRAVEL
            if m.kind == "fall":
                verb = "falls"
            elif m.kind == "bounce":
                verb = "bounces"
            elif moves:
                verb = "rolls" if o.shape == "sphere" else "slides"
            else:
                verb = "rests"
        else:
            f = spec.scene.figures[i - n_obj]
            attrs = {"shape": "person", "color": f.color}
            moves = m.kind == "walk" and travel > MIN_TRAVEL
            verb = {"walk": "walks" if moves else "stands", "wave": "waves", "stand": "stands"}[m.kind]
        first_floor = next((e.frame for e in mine if e.kind == "floor"), None)
        start = first_floor if verb == "falls" else next((k for k in range(T) if hspeed[k] > MOVING_SPEED), None)
        direction, speed, segment = None, None, None
        if moves and start is not None and start < T - 1:
            turns = [e for e in mine if e.kind in ("wall", "collision") and e.time * spec.fps > start + 1e-9]
            end = min(T - 1, math.floor(turns[0].time * spec.fps)) if turns else T - 1
            still = [k for k in range(start + 1, end + 1) if hspeed[k] <= MOVING_SPEED]
            end = still[0] if still else end
            if end > start:
                uv = _ground_pixels(clip, pos)
                du, dv = (uv[end] - uv[start]).tolist()
                direction = direction_of(du, dv, clip.width)
                unseen = not _visible(clip, iid, start, end)
                if (direction["horizontal"] is None and direction["depth"] is None) or unseen:
                    direction = None
                speed = _speed_class(math.hypot(du, dv), (end - start) / spec.fps, clip.width)
                segment = [int(start), int(end)]
        pushed_by = None
        if verb in ("rolls", "slides") and m.kind == "rest" and start is not None:
            hits = [e for e in events if e["kind"] == "collision" and e["frame"] <= start + 1]
            pushed_by = hits[0]["with"] if hits else None
        out.append({
            "id": iid, "kind": "object" if i < n_obj else "figure", "attributes": attrs, "motion": verb,
            "moves": bool(moves), "segment": segment, "direction": direction, "speed": speed, "events": events,
            "pushed_by": pushed_by, "stop_frame": _stop_frame(m, spec) if verb == "walks" else None,
        })  # fmt: skip
    return out


def _visible(clip: Clip, instance_id: int, start: int, end: int) -> bool:
    """True when an item shows at least VISIBLE_SHARE of its unoccluded area in at least VISIBLE_FRAMES of
    the frames start..end: a motion seen mostly behind nearer items is not there to be stated. A figure's
    limbs overlap one another, so its unoccluded area is taken as the most it shows in any frame."""
    infos = [f.objects[instance_id - 1] for f in clip.frames]
    whole = max(o.area for o in infos) if infos[0].kind == "figure" else None
    shown = [o.area >= VISIBLE_SHARE * max(whole or o.full_area, 1) for o in infos[start : end + 1]]
    return float(np.mean(shown)) >= VISIBLE_FRAMES


def _stop_frame(m, spec) -> int | None:
    """First frame a walk has ended on (None when the figure walks to the end)."""
    if m.stop is None:
        return None
    k = math.ceil(m.stop * spec.fps - 1e-9)
    return k if k < spec.n_frames - 1 else None


def camera_motion(clip: Clip) -> str | None:
    """'left' or 'right' when the camera pans, else None."""
    p = clip.spec.pan
    return None if abs(p) < PAN_MIN else ("right" if p > 0 else "left")


# ----------------------------------------------------------------------------- text


def _pick(rng: np.random.Generator, options):
    """One element of a sequence."""
    return options[int(rng.integers(len(options)))]


def _article(word: str) -> str:
    """'a' or 'an'."""
    return "an" if word[0] in "aeiou" else "a"


def _stated_attributes(ms: dict, all_ms: list[dict], rng: np.random.Generator) -> dict[str, str]:
    """Attributes a caption names for an item: colour and shape always, size / material sometimes or to disambiguate."""
    a = ms["attributes"]
    out = {"color": a["color"], "shape": a["shape"]}
    if ms["kind"] == "figure":
        return out
    twins = [o["attributes"] for o in all_ms if o is not ms and o["kind"] == "object"
             and (o["attributes"]["color"], o["attributes"]["shape"]) == (a["color"], a["shape"])]  # fmt: skip
    if rng.random() < 0.35 or (twins and any(t["size"] != a["size"] for t in twins)):
        out["size"] = a["size"]
    if rng.random() < 0.3 or (twins and "size" not in out):
        out["material"] = a["material"]
    return out


def _noun(attrs: dict[str, str], rng: np.random.Generator, definite: bool) -> str:
    """'a small red metal ball', 'the red ball', 'a person in blue'."""
    if attrs["shape"] == "person":
        if definite:
            return f"the {attrs['color']} figure" if rng.random() < 0.5 else "the person"
        noun = _pick(rng, FIGURE_WORDS)
        if noun == "person":
            return f"a person in {attrs['color']}"
        return f"{_article(attrs['color'])} {attrs['color']} {noun}"
    words = []  # a definite phrase keeps the size (or else the material) to stay unambiguous
    if "size" in attrs:
        words.append(_pick(rng, SIZE_WORDS[attrs["size"]]))
    words.append(attrs["color"])
    if "material" in attrs and not (definite and "size" in attrs):
        words.append(_pick(rng, MATERIAL_WORDS[attrs["material"]]))
    words.append(_pick(rng, SHAPE_WORDS[attrs["shape"]])[0])
    text = " ".join(words)
    return f"the {text}" if definite else f"{_article(text)} {text}"


def _direction_text(direction: dict | None, rng: np.random.Generator) -> str:
    """'to the left', 'toward the camera', 'to the right and away from the camera'."""
    if not direction:
        return ""
    parts = [_pick(rng, DIRECTION_WORDS[d]) for d in (direction["horizontal"], direction["depth"]) if d]
    if len(parts) == 2:
        parts = [DIRECTION_WORDS[direction["horizontal"]][0], DIRECTION_WORDS[direction["depth"]][0]]
    return " and ".join(parts)


def _stated_event(ms: dict, told: set) -> dict | None:
    """The first event an item's clause tells: its first hit on another item (not told yet), wall bounce or landing."""
    seg = ms["segment"]
    for e in ms["events"]:
        if e["kind"] in ("collision", "wall"):
            if e["kind"] == "collision" and (e["frame"], frozenset((ms["id"], e["with"]))) in told:
                continue  # told by the other item's clause
            if seg and e["frame"] >= seg[0]:
                return e
            continue
        if e["kind"] == "floor" and ms["motion"] in ("falls", "bounces"):
            return e
        if e["kind"] == "footstep":
            return e
    return None


def describe_clip(clip: Clip, rng: np.random.Generator, split: str = "train", sound_prob: float = 0.7,
                  speed_prob: float = 0.6) -> Caption:
    """A varied caption telling every item's motion, its first impact (often with its sound) and any pan."""
    truth = motion_specs(clip)
    by_id = {ms["id"]: ms for ms in truth}
    named: dict[int, dict[str, str]] = {}
    told: set = set()  # collisions already told, as (frame, {ids})
    order = sorted(truth, key=lambda ms: (not ms["moves"] and ms["motion"] != "waves",
                                          ms["segment"][0] if ms["segment"] else 0, ms["id"]))  # fmt: skip
    clauses, items = [], []

    def tell(ms: dict) -> None:
        if ms["id"] not in {x["id"] for x in items}:
            clauses.append(_clause(ms, truth, by_id, named, items, told, rng, sound_prob, speed_prob))

    for ms in order:
        if ms["pushed_by"] is not None and ms["pushed_by"] not in named:
            continue  # told after its hitter
        tell(ms)
        for other in order:  # items this one set moving, right after it
            if other["pushed_by"] == ms["id"]:
                tell(other)
    for ms in order:  # anything left (e.g. pushed by an item told only as a target)
        tell(ms)
    pan = camera_motion(clip)
    if pan:
        clauses.append(_pick(rng, PAN_WORDS[pan]))
    body = _join(clauses, rng)
    tpl = _pick(rng, HELDOUT_CLIP_TEMPLATES) if split == "test" and rng.random() < 0.5 else _pick(rng, CLIP_TEMPLATES)
    text = tpl.format(body)
    text = text[0].upper() + text[1:] + ("." if rng.random() < 0.6 else "")
    structured = {"items": items, "camera": {"pan": pan} if pan else None, "exhaustive": True}
    return Caption(text, structured)


def _clause(ms, truth, by_id, named, items, told, rng, sound_prob, speed_prob) -> str:
    """One item's clause; records what it states in `items` and names it in `named`."""
    iid = ms["id"]
    definite = iid in named
    attrs = named.get(iid) or _stated_attributes(ms, truth, rng)
    named[iid] = attrs
    item: dict[str, Any] = {"id": iid, "attributes": attrs, "motion": ms["motion"], "events": []}
    words = [_noun(attrs, rng, definite)]

    def other(j: int) -> str:
        if j in named:
            return _noun(named[j], rng, True)
        named[j] = _stated_attributes(by_id[j], truth, rng)
        return _noun(named[j], rng, False)

    def sound(e: dict, said: dict) -> None:
        if rng.random() < sound_prob or e["kind"] == "footstep":
            repeated = ms["motion"] == "bounces" and sum(x["kind"] == "floor" for x in ms["events"]) > 1
            phrases = REPEATED_SOUND.get(e["sound"]) if repeated else None
            words.append(_pick(rng, phrases or SOUND_PHRASES[e["sound"]]))
            said["sound"] = e["sound"]

    push = _pushing_event(ms)
    if push is not None and (push["frame"], frozenset((iid, push["with"]))) not in told:
        words += [_pick(rng, ("is hit by", "is knocked by", "gets struck by")), other(push["with"])]
        said = {"kind": "collision", "with": push["with"]}
        sound(push, said)
        item["events"].append(said)
        told.add((push["frame"], frozenset((iid, push["with"]))))
        words.append("and")
    words.append(_pick(rng, VERB_WORDS[ms["motion"]]))
    if ms["motion"] in ("rolls", "slides", "bounces", "walks") and ms["direction"]:
        if ms["speed"] in SPEED_WORDS and rng.random() < speed_prob:
            options = SPEED_WORDS[ms["speed"]]
            words.append(_pick(rng, options) if ms["kind"] == "object" else options[0])  # people walk slowly
            item["speed"] = ms["speed"]
        words.append(_direction_text(ms["direction"], rng))
        item["direction"] = {k: v for k, v in ms["direction"].items() if v}
    e = _stated_event(ms, told)
    if e is not None:
        said = {"kind": e["kind"]}
        if e["kind"] == "collision":
            words.append(f"and {_pick(rng, HIT_WORDS)} {other(e['with'])}")
            said["with"] = e["with"]
            told.add((e["frame"], frozenset((iid, e["with"]))))
        elif e["kind"] == "wall":
            words.append(f"and {_pick(rng, WALL_WORDS)}")
        elif e["kind"] == "floor" and ms["motion"] == "falls":
            words.append(f"and {_pick(rng, LAND_WORDS)}")
        sound(e, said)
        item["events"].append(said)
    if ms["stop_frame"] is not None:
        words.append(_pick(rng, ("and then stops", "and comes to a stop", "then stands still")))
        item["stops"] = True
    if ms["motion"] == "falls" and ms["direction"] and ms["direction"]["horizontal"] and rng.random() < 0.7:
        after = "rolls" if attrs["shape"] == "sphere" else "slides"
        words.append(f"then {after} {DIRECTION_WORDS[ms['direction']['horizontal']][0]}")
        item["direction"] = {"horizontal": ms["direction"]["horizontal"]}
    items.append(item)
    return " ".join(w for w in words if w)


def _pushing_event(ms: dict) -> dict | None:
    """The collision that set a resting item moving, if any."""
    if ms["pushed_by"] is None or not ms["segment"]:
        return None
    return next((e for e in ms["events"] if e["kind"] == "collision" and e["with"] == ms["pushed_by"]
                 and e["frame"] <= ms["segment"][0] + 1), None)  # fmt: skip


def _join(clauses: list[str], rng: np.random.Generator) -> str:
    """Clauses as one or a few sentences."""
    if not clauses:
        return "an empty floor where nothing happens"
    if len(clauses) == 1:
        return clauses[0]
    if rng.random() < 0.5:
        return ", ".join(clauses[:-1]) + (", and " if rng.random() < 0.3 else " and ") + clauses[-1]
    sentences = [c[0].upper() + c[1:] for c in clauses]
    sentences[0] = clauses[0]
    return ". ".join(sentences)


# ----------------------------------------------------------------------------- checks


def check_clip_caption(structured: dict[str, Any], clip: Clip) -> list[str]:
    """Every way a clip contradicts a clip caption's structured form (empty list = consistent)."""
    truth = {ms["id"]: ms for ms in motion_specs(clip)}
    problems = []
    for it in structured.get("items", []):
        ms = truth.get(it["id"])
        if ms is None:
            problems.append(f"item {it['id']}: not in the clip")
            continue
        for k, v in it["attributes"].items():
            if ms["attributes"].get(k) != v:
                problems.append(f"item {it['id']}: {k} is {ms['attributes'].get(k)!r}, not {v!r}")
        if it["motion"] != ms["motion"]:
            problems.append(f"item {it['id']}: {ms['motion']}, not {it['motion']}")
        for k, v in (it.get("direction") or {}).items():
            if not ms["direction"] or ms["direction"].get(k) != v:
                problems.append(f"item {it['id']}: moves {ms['direction']}, not {k} {v}")
        if "speed" in it and it["speed"] != ms["speed"]:
            problems.append(f"item {it['id']}: speed is {ms['speed']}, not {it['speed']}")
        if it.get("stops") and ms.get("stop_frame") is None:
            problems.append(f"item {it['id']}: does not stop")
        for e in it.get("events", []):
            ok = any(
                t["kind"] == e["kind"] and t.get("with") == e.get("with", t.get("with"))
                and ("sound" not in e or t["sound"] == e["sound"])
                for t in ms["events"]
            )  # fmt: skip
            if not ok:
                problems.append(f"item {it['id']}: no {e} event")
    pan = camera_motion(clip)
    cam = (structured.get("camera") or {}).get("pan")
    if cam != pan and (cam is not None or structured.get("exhaustive")):
        problems.append(f"camera pan is {pan}, caption says {cam}")
    if structured.get("exhaustive") and {it["id"] for it in structured.get("items", [])} != set(truth):
        problems.append("the caption does not tell every item")
    return problems
