"""Training data for the built-in model: world renders cached in shards, latents, and random inpainting masks."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARD_RE = re.compile(r"shard_(\d{5})\.npz$")


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """np.savez_compressed to a temp file, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def shard_path(root: Path, index: int) -> Path:
    """Path of image shard `index` under `root`."""
    return root / "shards" / f"shard_{index:05d}.npz"


def list_shards(root: Path) -> list[Path]:
    """Finished image shards under `root`, in index order."""
    d = root / "shards"
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if SHARD_RE.search(p.name))


def render_one(seed: int, size: int, captions: int, prompt_share: float = 0.0
               ) -> tuple[np.ndarray, np.ndarray, dict, list[str], dict | None]:
    """One training scene (split='train'): image (H, W, 3) uint8, instance map (H, W) uint8, spec dict,
    `captions` captions and the prompt record the scene was built from (None for a sampled scene).

    With probability `prompt_share` the scene is built from a GenEval-style prompt record of the training
    split (short prompts like 'two cubes' or 'a sphere left of a cone', whose scene holds exactly what they
    name; held-out colour-shape pairs and phrasings never occur); its first caption is that prompt and the
    others come from the world's captioner, as for sampled scenes.
    """
    from mediagen.world.captions import GENEVAL_TAGS, describe, make_geneval_prompts, spec_from_prompt_meta
    from mediagen.world.render import render_scene
    from mediagen.world.sample import sample_scene
    from mediagen.world.splits import allowed_in_train

    rng = np.random.default_rng(seed)
    first: list[str] = []
    meta = None
    if prompt_share > 0 and np.random.default_rng([seed, 1]).random() < prompt_share:
        while True:  # unnamed colours are random: redraw scenes that hold a held-out colour-shape pair
            meta = make_geneval_prompts(str(rng.choice(GENEVAL_TAGS)), 1, rng, split="train")[0]
            spec = spec_from_prompt_meta(meta, rng)
            if all(allowed_in_train(o) for o in spec.objects):
                break
        first = [meta["prompt"]]
    else:
        spec = sample_scene(rng, split="train")
    r = render_scene(spec, size, size)
    inst = np.clip(np.asarray(r.instance), 0, 255).astype(np.uint8)
    texts = first + [describe(spec, np.random.default_rng([seed, k]), render=r, split="train").text
                     for k in range(captions - len(first))]
    return np.asarray(r.image, dtype=np.uint8), inst, spec.to_dict(), texts, meta


def render_shard(root: Path, index: int, *, shard_size: int, size: int, seed: int, captions: int,
                 prompt_share: float = 0.0) -> Path:
    """Render scenes [index * shard_size, (index + 1) * shard_size) into one shard file (atomic)."""
    images, insts, specs, texts, metas = [], [], [], [], []
    for i in range(index * shard_size, (index + 1) * shard_size):
        im, inst, spec, caps, meta = render_one(seed * 1_000_003 + i, size, captions, prompt_share)
        metas.append(json.dumps(meta) if meta else "")
        images.append(im)
        insts.append(inst)
        specs.append(json.dumps(spec))
        texts.append(caps)
    path = shard_path(root, index)
    save_npz_atomic(path, images=np.stack(images), instance=np.stack(insts), specs=np.array(specs, dtype=str),
                    captions=np.array(texts, dtype=str), prompt_metas=np.array(metas, dtype=str))
    return path


def caption_specs(specs: np.ndarray, captions: int, seed: int, size: int = 128) -> np.ndarray:
    """Captions for shards rendered without them, (N, K) str; deterministic in `seed`."""
    from mediagen.world.captions import describe
    from mediagen.world.render import render_scene
    from mediagen.world.spec import SceneSpec

    out = []
    for i, s in enumerate(specs):
        spec = SceneSpec.from_dict(json.loads(str(s)))
        r = render_scene(spec, size, size, antialias=False)
        out.append([describe(spec, np.random.default_rng([seed, i, k]), render=r, split="train").text
                    for k in range(captions)])
    return np.array(out, dtype=str)


def render_dataset(root: Path, *, scenes: int, shard_size: int, size: int, seed: int, captions: int,
                   prompt_share: float = 0.0, log=print) -> None:
    """Render every missing shard up to `scenes` scenes; safe to stop and restart at any time."""
    n = (scenes + shard_size - 1) // shard_size
    for index in range(n):
        if shard_path(root, index).exists():
            continue
        t0 = time.perf_counter()
        render_shard(root, index, shard_size=shard_size, size=size, seed=seed, captions=captions,
                     prompt_share=prompt_share)
        dt = time.perf_counter() - t0
        log(f"shard {index + 1}/{n}: {shard_size} scenes in {dt:.1f} s ({shard_size / dt:.1f} scenes/s)")


def load_images(paths: list[Path]) -> np.ndarray:
    """All images of the given shards, (N, H, W, 3) uint8."""
    return np.concatenate([np.load(p)["images"] for p in paths])


def load_objects(paths: list[Path]) -> np.ndarray:
    """Where the given shards' images show an object (any rendered instance), (N, H, W) bool."""
    return np.concatenate([np.load(p)["instance"] > 0 for p in paths])


def drop_colors(text: str) -> str:
    """The caption without its object colour words ('an orange cube' -> 'a cube'), still true of the image.

    The world's captions always name every object's colour, so prompts without colours (GenEval's counting,
    position and single/two-object prompts) are otherwise unlike anything seen in training. Background
    phrases ('under a blue sky', 'against a blue-gray wall') keep their colours.
    """
    from mediagen.world.captions import BACKGROUND_WORDS
    from mediagen.world.spec import COLORS

    kept: dict[str, str] = {}
    for i, phrase in enumerate(p for ps in BACKGROUND_WORDS.values() for p in ps):
        if phrase in text:
            kept[f"\x00{i}\x00"] = phrase
            text = text.replace(phrase, f"\x00{i}\x00")
    text = re.sub(r"\b(?:" + "|".join(COLORS) + r")\b(?!-) ?", "", text, flags=re.IGNORECASE)
    text = re.sub(r"\b([Aa])n (?=[^aeiouAEIOU\W])", r"\1 ", text)  # 'an orange cube' -> 'an cube' -> 'a cube'
    for token, phrase in kept.items():
        text = text.replace(token, phrase)
    return re.sub(r"  +", " ", text).strip()


# ---------------------------------------------------------------------------------------------------------
# Inpainting masks at latent resolution (1 = regenerate)


def _box(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.float32)
    bh, bw = rng.integers(h // 8, h * 3 // 4 + 1), rng.integers(w // 8, w * 3 // 4 + 1)
    y, x = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
    m[y : y + bh, x : x + bw] = 1
    return m


def _blob(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    m = np.zeros((h, w), bool)
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    for _ in range(rng.integers(1, 5)):
        ry, rx = rng.uniform(h / 12, h / 3), rng.uniform(w / 12, w / 3)
        m |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        cy = np.clip(cy + rng.normal(0, h / 6), 0, h)
        cx = np.clip(cx + rng.normal(0, w / 6), 0, w)
    return m.astype(np.float32)


def _border(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Outpainting: the known part is an inner rectangle; 1..4 sides are regenerated, random widths."""
    m = np.zeros((h, w), np.float32)
    sides = rng.permutation(4)[: rng.integers(1, 5)]
    for s in sides:
        k = int(rng.integers(max(1, h // 16), h // 2 + 1))
        if s == 0:
            m[:, :k] = 1
        elif s == 1:
            m[:k] = 1
        elif s == 2:
            m[:, w - k :] = 1
        else:
            m[h - k :] = 1
    return m


def _dilate(m: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation by a (2r+1)^2 square."""
    out = m.copy()
    p = np.pad(m, r)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out = np.maximum(out, p[dy : dy + m.shape[0], dx : dx + m.shape[1]])
    return out


def _object(rng: np.random.Generator, inst: np.ndarray) -> np.ndarray | None:
    """The (dilated) region of one random object of the GT instance map, or None when there is none."""
    ids = np.unique(inst)
    ids = ids[ids > 0]
    if len(ids) == 0:
        return None
    m = (inst == rng.choice(ids)).astype(np.float32)
    return _dilate(m, int(rng.integers(0, 3)))


def random_mask(rng: np.random.Generator, inst: np.ndarray, p_full: float = 0.5) -> np.ndarray:
    """A training mask (h, w) float32: all ones (text-to-image) with probability p_full, else a box, blob,
    object or outpainting border (SD-inpainting-style training, Rombach et al. 2022)."""
    h, w = inst.shape
    if rng.random() < p_full:
        return np.ones((h, w), np.float32)
    kind = rng.integers(0, 4)
    if kind == 0:
        m = _box(rng, h, w)
    elif kind == 1:
        m = _blob(rng, h, w)
    elif kind == 2:
        m = _border(rng, h, w)
    else:
        m = _object(rng, inst)
        if m is None:
            m = _box(rng, h, w)
    if m.sum() == 0:
        m = _box(rng, h, w)
    return m


def downsample_instance(inst: np.ndarray, factor: int) -> np.ndarray:
    """Instance maps (N, H, W) -> (N, H/f, W/f): each cell takes the id covering most of its pixels,
    background only when no object covers it at all (so small objects keep a cell)."""
    n, h, w = inst.shape
    blocks = inst.reshape(n, h // factor, factor, w // factor, factor).transpose(0, 1, 3, 2, 4)
    blocks = blocks.reshape(n, h // factor, w // factor, factor * factor)
    out = np.zeros((n, h // factor, w // factor), np.uint8)
    best = np.zeros((n, h // factor, w // factor), np.int32)
    for i in np.unique(inst):
        if i == 0:
            continue
        c = (blocks == i).sum(-1)
        take = c > best
        out[take], best[take] = i, c[take]
    return out


@dataclass
class LatentSet:
    """Cached training set in RAM: scaled latents, cell-level instance maps, captions, and which scenes were
    built from a prompt record (their first caption is that prompt)."""

    latents: np.ndarray  # (N, C, h, w) float16
    instance: np.ndarray  # (N, h, w) uint8
    captions: np.ndarray  # (N, K) str
    prompted: np.ndarray  # (N,) bool
    metas: np.ndarray | None = None  # (N,) str: the prompt record as JSON where prompted, else ''

    def __len__(self) -> int:
        return len(self.latents)


def grounded_words(words: list[str], meta: dict) -> dict[int, int]:
    """Which words of a prompt name which of its record's include entries: {word index: entry index}.

    An entry is named by its shape word (any synonym, singular or plural) and by its colour word where that
    comes just before the shape word ('a red cube'); a caption whose colours were dropped grounds the shapes.
    """
    from mediagen.world.captions import SHAPE_WORDS

    out: dict[int, int] = {}
    low = [w.lower() for w in words]
    for i, inc in enumerate(meta.get("include", [])):
        forms = {f for pair in SHAPE_WORDS.get(inc["class"], ()) for f in pair}
        for k, w in enumerate(low):
            if w in forms:
                out[k] = i
                if k > 0 and "color" in inc and low[k - 1] == inc["color"]:
                    out[k - 1] = i
    return out


def entry_ids(meta: dict) -> list[range]:
    """Instance ids of each include entry's objects, in include order: entry i holds the scene's objects
    first[i]..first[i + 1] - 1 (spec_from_prompt_meta keeps the include order), ids first[i] + 1..first[i + 1]."""
    first = np.cumsum([0] + [int(inc.get("count", 1)) for inc in meta.get("include", [])])
    return [range(int(a) + 1, int(b) + 1) for a, b in zip(first[:-1], first[1:])]
