"""`mediagen world`: look at the built-in world.

    mediagen world sample --n 16 -o world_samples            # scenes with every ground-truth map
    mediagen world sample --n 8 --clips 2 --size 192 -o DIR   # plus clips with their sound track

Each scene k writes `scene_KKKK.png` and its maps (`_depth`, `_seg`, `_edges`, `_pose`, `_normals`), the
caption (`.txt`) and the scene spec with the caption's structured form (`.json`); each clip writes an
MP4 with sound, a contact strip and its spec, trajectories and events. `index.html` shows everything.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from mediagen.errors import MediagenError, RequestError
from mediagen.world.evaluate import write_png, write_text

MAPS = ("depth", "seg", "edges", "pose", "normals")


def _maps(r) -> dict[str, np.ndarray]:
    """The render's ground-truth maps as (H, W, 3) uint8 images."""
    return {
        "depth": r.depth_image,
        "seg": r.seg_image,
        "edges": np.repeat(r.edges[..., None], 3, axis=2),
        "pose": r.pose_image,
        "normals": r.normal_image,
    }


def sample_scenes(out: Path, n: int, seed: int, size: int, split: str) -> list[dict]:
    """Write n scenes with maps, captions and specs; returns one index entry per scene."""
    from mediagen.world import describe, render_scene, sample_scene

    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        spec = sample_scene(rng, split=split, with_figure_prob=0.35, pattern_prob=0.2)
        r = render_scene(spec, size, size)
        cap = describe(spec, rng, render=r, split=split)
        stem = f"scene_{k:04d}"
        write_png(out / f"{stem}.png", Image.fromarray(r.image))
        for name, img in _maps(r).items():
            write_png(out / f"{stem}_{name}.png", Image.fromarray(img))
        write_text(out / f"{stem}.txt", cap.text + "\n")
        meta = {"caption": cap.text, "structured": cap.structured, "spec": spec.to_dict(),
                "objects": [{"id": o.id, "shape": o.shape, "color": o.color, "box": o.box, "area": o.area}
                            for o in r.objects]}  # fmt: skip
        write_text(out / f"{stem}.json", json.dumps(meta, indent=2) + "\n")
        rows.append({"stem": stem, "caption": cap.text})
    return rows


def sample_clips(out: Path, n: int, seed: int, size: int, frames: int, split: str) -> list[dict]:
    """Write n clips (MP4 with sound, contact strip, JSON); returns one index entry per clip."""
    from mediagen.world.clip_captions import describe_clip
    from mediagen.world.clips import contact_strip, render_clip, sample_clip, save_clip

    rng = np.random.default_rng(seed + 1)
    rows = []
    for k in range(n):
        spec = sample_clip(rng, n_frames=frames, split=split)
        clip = render_clip(spec, size, size)
        stem = f"clip_{k:04d}"
        save_clip(clip, out / f"{stem}.mp4")
        write_png(out / f"{stem}_strip.png", Image.fromarray(contact_strip(clip, maps=("image", "depth_image"))))
        cap = describe_clip(clip, rng, split=split)
        write_text(out / f"{stem}.json", json.dumps({"caption": cap.text, **clip.to_dict()}, indent=2) + "\n")
        rows.append({"stem": stem, "caption": cap.text})
    return rows


def index_page(scenes: list[dict], clips: list[dict]) -> str:
    """An HTML page showing every scene with its maps and caption, and every clip."""
    esc = html.escape
    parts = []
    for s in scenes:
        imgs = "".join(f'<img src="{s["stem"]}{suffix}.png" title="{name}">'
                       for name, suffix in [("image", "")] + [(m, f"_{m}") for m in MAPS])  # fmt: skip
        parts.append(f'<div class="row">{imgs}<p>{esc(s["caption"])} <a href="{s["stem"]}.json">spec</a></p></div>')
    for c in clips:
        parts.append(f'<div class="row"><video src="{c["stem"]}.mp4" controls loop></video>'
                     f'<img src="{c["stem"]}_strip.png" class="strip"><p>{esc(c["caption"])} '
                     f'<a href="{c["stem"]}.json">spec</a></p></div>')  # fmt: skip
    return ("<!doctype html><html><head><meta charset='utf-8'><title>mediagen world samples</title><style>"
            "body{font-family:sans-serif;background:#181818;color:#ddd} img,video{width:128px;margin:2px;"
            "image-rendering:pixelated} img.strip{width:auto;max-width:100%} .row{margin-bottom:12px}</style>"
            "</head><body><h1>mediagen world samples</h1>" + "".join(parts) + "</body></html>\n")  # fmt: skip


def cmd_sample(args: argparse.Namespace) -> int:
    """Write the samples and the index page."""
    if args.n < 0 or args.clips < 0:
        raise RequestError("--n and --clips must be 0 or more")
    if not 16 <= args.size <= 1024:
        raise RequestError(f"--size {args.size}: expected 16..1024 pixels")
    args.output.mkdir(parents=True, exist_ok=True)
    scenes = sample_scenes(args.output, args.n, args.seed, args.size, args.split)
    clips = sample_clips(args.output, args.clips, args.seed, args.size, args.frames, args.split)
    write_text(args.output / "index.html", index_page(scenes, clips))
    print(f"wrote {len(scenes)} scenes and {len(clips)} clips to {args.output} (open index.html)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Options of `mediagen world`."""
    p = argparse.ArgumentParser(prog="mediagen world", description="Look at the built-in procedural world.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="write example scenes (image, maps, caption, spec) and clips")
    s.add_argument("--n", type=int, default=16, help="scenes (default 16)")
    s.add_argument("--clips", type=int, default=2, help="clips with sound (default 2)")
    s.add_argument("--frames", type=int, default=16, help="frames per clip")
    s.add_argument("--size", type=int, default=128, help="image side in pixels")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--split", default="train", choices=("train", "test"))
    s.add_argument("-o", "--output", type=Path, required=True)
    s.set_defaults(func=cmd_sample)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `mediagen world`."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MediagenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
