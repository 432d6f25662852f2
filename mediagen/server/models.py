"""Models as the server sees them: registry models plus operator-configured plugins, loaded only in children.

The HTTP process never imports torch. Model lists and capabilities come from the worker (published when
it loads a model) or, on a cache miss, from a short-lived probe process:
`python -m mediagen.server.models {models|caps MODEL}` with the config JSON on stdin, answering JSON on stdout.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
import time
from typing import Any, Callable

from mediagen.server.config import ServerConfig


def load_plugin(spec: str) -> Callable[..., Any]:
    """The loader function named by 'module:function' or '/abs/file.py:function'."""
    target, _, func = spec.rpartition(":")
    if target.endswith(".py"):
        name = "mediagen_plugin_" + hashlib.sha256(target.encode()).hexdigest()[:12]
        if name in sys.modules:
            module = sys.modules[name]
        else:
            mspec = importlib.util.spec_from_file_location(name, target)
            module = importlib.util.module_from_spec(mspec)
            sys.modules[name] = module
            mspec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    return getattr(module, func)


class LazyModels(dict):
    """Loaded models by id; plugin ids count as present and are loaded on first access (one broken plugin
    fails only the requests that name it)."""

    def __init__(self, loaders: dict[str, Callable[[], Any]]):
        super().__init__()
        self._loaders = loaders

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) or key in self._loaders

    def __missing__(self, key: str) -> Any:
        if key not in self._loaders:
            raise KeyError(key)
        self[key] = model = self._loaders[key]()
        return model


def open_engine(config: ServerConfig):
    """A Mediagen context that also knows the plugin models, by id."""
    from mediagen.api import Mediagen

    s = config.resolved_settings()

    def loader(mid: str, spec: str) -> Callable[[], Any]:
        return lambda: load_plugin(spec)(mid, device=s.device, dtype=s.torch_dtype())

    return Mediagen(s, _models=LazyModels({mid: loader(mid, spec) for mid, spec in config.model_plugins}))


def model_rows(config: ServerConfig) -> list[dict[str, Any]]:
    """Every model id a request may name: plugins first, then the registry's list."""
    from mediagen.registry import list_models

    rows = [{"id": mid, "family": "plugin", "installed": True, "source": spec} for mid, spec in config.model_plugins]
    seen = {r["id"] for r in rows}
    rows += [r for r in list_models(config.settings) if r["id"] not in seen]
    return rows


def capabilities_json(engine: Any, model_id: str) -> dict[str, Any]:
    """A model's capabilities as `mediagen modes` prints them."""
    return engine.capabilities(model_id).model_dump(mode="json")


def answer(fn: Callable[[], Any]) -> dict[str, Any]:
    """{"ok": True, "value": fn()}, or why it failed: {"ok": False, "kind": "not_found" | "error", "error", "at"}."""
    from mediagen.errors import MediagenError, ModelNotFoundError

    try:
        return {"ok": True, "value": fn()}
    except ModelNotFoundError as e:
        kind, message = "not_found", str(e)
    except MediagenError as e:
        kind, message = "error", str(e)
    except Exception as e:  # a model that fails to load is reported to whoever asks, not raised
        kind, message = "error", f"{type(e).__name__}: {e}"
    return {"ok": False, "kind": kind, "error": message, "at": time.time()}


def main(argv: list[str] | None = None) -> int:
    """Probe entry point: the config JSON on stdin, one JSON answer on stdout."""
    argv = sys.argv[1:] if argv is None else argv
    config = ServerConfig.from_json(sys.stdin.readline())
    if argv[0] == "models":
        result = answer(lambda: model_rows(config))
    else:
        result = answer(lambda: capabilities_json(open_engine(config), argv[1]))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
