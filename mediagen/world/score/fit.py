"""Fit the detector's shape classifier on world renders: `python -m mediagen.world.score.fit [--scenes N]`.

A third of the scenes are random world scenes (many patterned objects and subjects, some figures), the rest
GenEval-style prompt scenes.
Regions are found with the detector's own segmentation (so the classifier learns its real noise) and
labelled with the shape of the rendered instance they overlap (IoU >= 0.5). Two images in three also
give a copy degraded the way generated images differ from clean renders (blur, resampling, JPEG, pixel noise and
blotchy low-frequency noise, in random mixes), so that the classifier names shapes from their silhouette
and coarse shading rather than from pixel-exact flat faces.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mediagen.world.captions import (
    GENEVAL_TAGS,
    make_geneval_prompts,
    spec_from_prompt_meta,
)
from mediagen.world.render import render_scene
from mediagen.world.sample import sample_scene
from mediagen.world.score.detect import (
    MODEL_FILE,
    SHAPE_CLASSES,
    ShapeModel,
    fit_mlp,
    region_features,
    segment,
)


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an image (H, W, C) float, edges replicated."""
    if sigma <= 0:
        return img.astype(np.float64)
    r = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    out = np.pad(img.astype(np.float64), ((r, r), (0, 0), (0, 0)), mode="edge")
    out = sum(k[i] * out[i : i + img.shape[0]] for i in range(2 * r + 1))
    out = np.pad(out, ((0, 0), (r, r), (0, 0)), mode="edge")
    return sum(k[i] * out[:, i : i + img.shape[1]] for i in range(2 * r + 1))


def degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random mix of generated-image artefacts on an image (H, W, 3) 0..255 -> float64 (H, W, 3)."""
    from PIL import Image

    h, w, _ = img.shape
    out = img.astype(np.float64)
    if rng.random() < 0.5:
        out = blur(out, float(rng.uniform(0.3, 1.1)))
    if rng.random() < 0.4:  # down and up again: soft edges and resampling ringing
        f = float(rng.uniform(1.3, 2.5))
        small = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)).resize((round(w / f), round(h / f)), Image.BILINEAR)
        out = np.asarray(small.resize((w, h), Image.BICUBIC), dtype=np.float64)
    if rng.random() < 0.5:  # blotchy noise: smooth random fields, as a decoder leaves on flat faces
        field = blur(rng.normal(0, 1, (h, w, 3)), float(rng.uniform(1.0, 3.0)))
        out = out + field / (field.std() + 1e-9) * float(rng.uniform(1.0, 4.0))
    if rng.random() < 0.5:
        out = out + rng.normal(0, float(rng.uniform(0.5, 3.0)), out.shape)
    if rng.random() < 0.4:
        buf = io.BytesIO()
        Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(40, 90)))
        out = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float64)
    return np.clip(out, 0, 255)


def _matched_regions(img: np.ndarray, r: Any) -> list[tuple[np.ndarray, str]]:
    """Shape features and true shape of each region the detector finds in img (H, W, 3) that overlaps one
    rendered instance of r (a render) with IoU >= 0.5."""
    seg = segment(img)
    out = []
    for m, f in zip(seg.masks, region_features(seg)):
        ids, counts = np.unique(r.instance[m], return_counts=True)
        best = int(ids[np.argmax(counts)])
        if best == 0:
            continue
        gt = r.instance == best
        if (gt & m).sum() / (gt | m).sum() < 0.5:
            continue
        out.append((f, r.objects[best - 1].shape))
    return out


def labelled_regions(n_scenes: int, seed: int, size: int = 128, degraded: float = 2 / 3) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, F) and class indices (N,) of detected regions matched to rendered objects, from every
    clean render and, for a share `degraded` of them, from a copy passed through `degrade` as well."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(n_scenes):
        if i % 3 == 0:
            spec = sample_scene(rng, with_figure_prob=0.3, pattern_prob=0.35, split="test" if i % 2 else "train")
        else:
            meta = make_geneval_prompts(GENEVAL_TAGS[i % len(GENEVAL_TAGS)], 1, rng, split="train")[0]
            spec = spec_from_prompt_meta(meta, rng)
        r = render_scene(spec, size, size)
        images = [r.image.astype(np.float64)]
        if rng.random() < degraded:
            images.append(degrade(r.image, rng))
        for img in images:
            for feats, shape in _matched_regions(img, r):
                xs.append(feats)
                ys.append(SHAPE_CLASSES.index(shape))
    return np.stack(xs), np.array(ys)


def fit(n_scenes: int, seed: int = 0, hidden: int = 32) -> tuple[ShapeModel, float]:
    """A classifier fitted on 80% of the regions of n_scenes scenes, and its accuracy on the other 20%."""
    x, y = labelled_regions(n_scenes, seed)
    rng = np.random.default_rng(seed + 1)
    order = rng.permutation(len(y))
    cut = int(0.8 * len(y))
    model = fit_mlp(x[order[:cut]], y[order[:cut]], SHAPE_CLASSES, hidden=hidden)
    acc = float((model.probs(x[order[cut:]]).argmax(axis=1) == y[order[cut:]]).mean())
    final = fit_mlp(x, y, SHAPE_CLASSES, hidden=hidden)
    final.meta = {"scenes": n_scenes, "regions": len(y), "seed": seed, "hidden": hidden, "heldout_accuracy": round(acc, 4)}
    return final, acc


def save_shape_model(model: ShapeModel, path: Path = MODEL_FILE) -> Path:
    """Write the classifier as JSON, atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.chmod(tmp, 0o644)
    with os.fdopen(fd, "w") as f:
        json.dump(model.to_json(), f)
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Fit and save the shipped classifier."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenes", type=int, default=4800)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("-o", "--output", type=Path, default=MODEL_FILE)
    a = ap.parse_args(argv)
    model, acc = fit(a.scenes, a.seed, a.hidden)
    save_shape_model(model, a.output)
    print(f"{model.meta['regions']} regions, held-out accuracy {acc:.4f}; wrote {a.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
