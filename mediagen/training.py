"""`mediagen train FAMILY ...`: hands the arguments to the family's own training entry point."""

from __future__ import annotations

import importlib
import sys
from types import MappingProxyType
from typing import Sequence

# family -> module whose main(argv) trains it
TRAINERS = MappingProxyType({"builtin": "mediagen.families.builtin.train"})


def main(argv: Sequence[str]) -> int:
    """Dispatch `mediagen train FAMILY [options]`."""
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in TRAINERS:
        print(f"usage: mediagen train {{{','.join(TRAINERS)}}} [options]   (`mediagen train builtin --help`)",
              file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return int(importlib.import_module(TRAINERS[argv[0]]).main(argv[1:]) or 0)
