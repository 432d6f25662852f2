"""The `mediagen` command line; generation options are generated from the request schema."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import types
import typing
from pathlib import Path
from typing import Any, Callable, Sequence

from pydantic import BaseModel

from mediagen.errors import Cancelled, MediagenError
from mediagen.schema import Control, Extend, GenerationRequest, Lora, Mode, Reference

# Conventional flag spellings for a few schema fields (all other flags are --field-name).
FLAG_ALIASES = {"negative_prompt": ["--negative"], "n": ["-n"], "model": ["--model", "-m"]}
SKIP_FIELDS = {"prompt", "mode", "width", "height"}  # positional prompt, the subcommand, --size


# -- parsing of structured options --------------------------------------------------------------
def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H)."""
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 512x512") from None


def parse_control(text: str) -> dict:
    """'KIND=PATH[:WEIGHT]' -> Control fields."""
    kind, sep, rest = text.partition("=")
    if not sep or not rest:
        raise argparse.ArgumentTypeError(f"--control {text!r}: expected KIND=PATH[:WEIGHT], e.g. depth=d.png:0.8")
    path, weight = _split_weight(rest)
    return {"kind": kind, "image": path, "weight": weight}


def parse_reference(text: str) -> dict:
    """'PATH[:ROLE[:WEIGHT]]' -> Reference fields."""
    parts = text.split(":")
    out: dict[str, Any] = {"image": parts[0]}
    if len(parts) > 1 and parts[1]:
        out["role"] = parts[1]
    if len(parts) > 2:
        out["weight"] = _float(parts[2], "--reference", text)
    if len(parts) > 3:
        raise argparse.ArgumentTypeError(f"--reference {text!r}: expected PATH[:ROLE[:WEIGHT]]")
    return out


def parse_lora(text: str) -> dict:
    """'PATH[:WEIGHT]' -> Lora fields."""
    path, weight = _split_weight(text)
    return {"path": path, "weight": weight}


def _split_weight(text: str) -> tuple[str, float]:
    head, sep, tail = text.rpartition(":")
    if sep and head:
        try:
            return head, float(tail)
        except ValueError:
            pass
    return text, 1.0


def _float(s: str, flag: str, text: str) -> float:
    try:
        return float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{flag} {text!r}: {s!r} is not a number") from None


def _extend(text: str) -> Extend:
    try:
        return Extend.parse(text)
    except MediagenError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# Parsers for structured field types: the schema's own types decide how a flag is read.
TYPE_PARSERS: dict[type, Callable[[str], Any]] = {
    Control: parse_control,
    Reference: parse_reference,
    Lora: parse_lora,
    Extend: _extend,
}


def _core_type(annotation: Any) -> tuple[Any, bool]:
    """(inner type, is_list) of a field annotation, unwrapping Optional/Annotated."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _core_type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _core_type(args[0]) if len(args) == 1 else (str, False)
    if origin is list:
        return typing.get_args(annotation)[0], True
    return annotation, False


def add_request_options(p: argparse.ArgumentParser) -> None:
    """Add one flag per GenerationRequest field (with the field's description as help)."""
    p.add_argument("prompt", nargs="?", default="", help=GenerationRequest.model_fields["prompt"].description)
    p.add_argument("--size", type=parse_size, help="output size WIDTHxHEIGHT (default: the model's)")
    for name, info in GenerationRequest.model_fields.items():
        if name in SKIP_FIELDS:
            continue
        flags = FLAG_ALIASES.get(name, []) + [f"--{name.replace('_', '-')}"]
        flags = list(dict.fromkeys(flags))
        inner, is_list = _core_type(info.annotation)
        kw: dict[str, Any] = {"dest": name, "help": info.description}
        if inner is bool:
            kw.update(action="store_true", default=None)
        elif isinstance(inner, type) and inner in TYPE_PARSERS:
            kw["type"] = TYPE_PARSERS[inner]
        elif inner in (int, float):
            kw["type"] = inner
        elif typing.get_origin(inner) is typing.Literal:
            kw.update(type=str, choices=list(typing.get_args(inner)))
        else:
            kw["type"] = str
        if is_list:
            kw["action"] = "append"
            singular = f"--{name.rstrip('s').replace('_', '-')}"
            flags = [singular]
        p.add_argument(*flags, **kw)
    p.add_argument("-o", "--output", type=Path, help="output file (default: out.png, or out.mp4 for video)")
    p.add_argument("--json", action="store_true", help="print the result (paths, mode, recipes) as JSON")


def request_from_args(args: argparse.Namespace, mode: Mode | None) -> GenerationRequest:
    """Build a GenerationRequest from parsed flags."""
    fields: dict[str, Any] = {"prompt": args.prompt or "", "mode": mode}
    for name in GenerationRequest.model_fields:
        if name in SKIP_FIELDS:
            continue
        v = getattr(args, name, None)
        if v is not None:
            fields[name] = v
    if args.size:
        fields["width"], fields["height"] = args.size
    return GenerationRequest(**fields)


# -- progress and Ctrl-C ------------------------------------------------------------------------
class ConsoleProgress:
    """A progress bar with step count and ETA; Ctrl-C asks for a clean stop at the next step."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.stop_requested = False
        self._bar = None
        self._start = time.monotonic()

    def on_sigint(self, signum, frame) -> None:
        if self.stop_requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.stop_requested = True
        print("\nstopping after this step (Ctrl-C again to stop at once)", file=sys.stderr)

    def __call__(self, p) -> None:
        if self.stop_requested:
            raise Cancelled("stopped by Ctrl-C")
        if self.quiet:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=p.steps * p.items, unit="step", file=sys.stderr, dynamic_ncols=True)
        self._bar.set_description(f"item {p.item + 1}/{p.items}")
        self._bar.update(p.item * p.steps + p.step - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def run_request(req: GenerationRequest, output: Path | None, as_json: bool) -> int:
    """Generate, save and report; returns the exit code."""
    from mediagen.api import Mediagen

    progress = ConsoleProgress()
    old = signal.signal(signal.SIGINT, progress.on_sigint)
    try:
        result = Mediagen().generate(req, progress)
    except Cancelled as e:
        print(f"cancelled: {e}; nothing was written", file=sys.stderr)
        return 130
    finally:
        progress.close()
        signal.signal(signal.SIGINT, old)
    is_video = result.outputs and result.outputs[0].kind == "video"
    out = output or Path("out.mp4" if is_video else "out.png")
    paths = result.save(out)
    if as_json:
        print(json.dumps({"mode": result.mode, "model": result.model, "outputs": [str(p) for p in paths],
                          "recipes": result.recipes}, indent=2))
    else:
        print(f"mode: {result.mode} (model {result.model})")
        for p, r in zip(paths, result.recipes):
            print(f"wrote {p} (seed {r.get('seed')})")
    return 0


# -- other commands -----------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    from mediagen.media import read_recipe

    print(json.dumps(read_recipe(args.file), indent=2))
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    from mediagen.media import read_recipe
    from mediagen.recipe import request_from_recipe

    req = request_from_recipe(read_recipe(args.file))
    return run_request(req, args.output, args.json)


def cmd_models(args: argparse.Namespace) -> int:
    from mediagen.registry import list_models
    from mediagen.settings import Settings

    rows = list_models(Settings.from_env())
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            state = "installed" if r["installed"] else "available"
            print(f"{r['id']:<50} {r['family']:<10} {state:<10} {r['source']}")
    return 0


def cmd_modes(args: argparse.Namespace) -> int:
    from mediagen.api import Mediagen

    caps = Mediagen().capabilities(args.model)
    print(json.dumps(caps.model_dump(mode="json"), indent=2))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from mediagen.schema import request_json_schema

    print(json.dumps(request_json_schema(), indent=2))
    return 0


# Commands that parse their own options: name -> (module with main(argv), help).
DELEGATED = {
    "train": ("mediagen.training", "train a model (e.g. `mediagen train builtin --minutes 30`)"),
    "eval": ("mediagen.world.evaluate", "generate from a prompt file and score the outputs"),
    "world": ("mediagen.world.cli", "the built-in world: `mediagen world sample --n 16 -o DIR`"),
    "serve": ("mediagen.server.app", "run the HTTP server and web UI"),
}


MODE_COMMANDS = {m.value: m for m in Mode}


def build_parser() -> argparse.ArgumentParser:
    """The full command-line parser."""
    from mediagen.schema import MODE_HELP

    parser = argparse.ArgumentParser(prog="mediagen", description="Generate images, video and sound.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, mode in MODE_COMMANDS.items():
        p = sub.add_parser(name, help=MODE_HELP[mode])
        add_request_options(p)
        p.set_defaults(func=lambda a, m=mode: run_request(request_from_args(a, m), a.output, a.json))
    p = sub.add_parser("generate", help="any inputs; the mode is inferred from them and reported")
    add_request_options(p)
    p.set_defaults(func=lambda a: run_request(request_from_args(a, None), a.output, a.json))

    p = sub.add_parser("info", help="print the recipe stored in an output file")
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("rerun", help="regenerate an output from its stored recipe")
    p.add_argument("file", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rerun)
    p = sub.add_parser("models", help="list installed and known models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("modes", help="print a model's modes and options as JSON")
    p.add_argument("--model", "-m", default=None)
    p.set_defaults(func=cmd_modes)
    p = sub.add_parser("schema", help="print the request JSON schema")
    p.set_defaults(func=cmd_schema)
    for name, (_, text) in DELEGATED.items():  # listed for --help; main() hands them their arguments
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mediagen` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:  # these commands parse their own options
        import importlib

        try:
            return int(importlib.import_module(DELEGATED[argv[0]][0]).main(argv[1:]) or 0)
        except MediagenError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MediagenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # pydantic validation errors of the request
        print(f"error: {_clean_validation(e)}", file=sys.stderr)
        return 2


def _clean_validation(e: ValueError) -> str:
    """A pydantic ValidationError as short lines naming each bad option."""
    from pydantic import ValidationError

    if isinstance(e, ValidationError):
        lines = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "request"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{loc}: {msg}" if loc != "request" else msg)
        return "; ".join(lines)
    return str(e)


if __name__ == "__main__":
    sys.exit(main())
