"""`python -m mediagen.convert IN OUT`: turn a pickle checkpoint into safetensors without running its code."""

from __future__ import annotations

import argparse
import sys

from mediagen.errors import MediagenError
from mediagen.safeload import convert_to_safetensors


def main(argv: list[str] | None = None) -> int:
    """Convert IN (.ckpt/.pt/.bin) to OUT (.safetensors) with the tensors-only loader."""
    ap = argparse.ArgumentParser(prog="python -m mediagen.convert", description=__doc__)
    ap.add_argument("src", help="pickle checkpoint (.ckpt, .pt, .bin)")
    ap.add_argument("dst", help="output .safetensors file")
    args = ap.parse_args(argv)
    try:
        n = convert_to_safetensors(args.src, args.dst)
    except MediagenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {n} tensors to {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
