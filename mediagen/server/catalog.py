"""Model lists and capabilities for the HTTP process, from the worker's published cache or a probe process."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import defaultdict
from typing import Any

from mediagen.errors import MediagenError
from mediagen.server.config import ServerConfig
from mediagen.server.files import NotFound
from mediagen.server.store import JobStore
from mediagen.server.supervisor import Notifier, Supervisor, child_env

ERROR_TTL_S = 60.0  # a model that failed to load is tried again after this
PROBE_TIMEOUT_S = 600.0
STARTUP_WAIT_S = 180.0


class ModelUnavailable(MediagenError):
    """A listed model cannot be loaded right now (missing weights, a broken file)."""


class Catalog:
    """Answers 'which models' and 'what can this model do' without loading anything in this process."""

    def __init__(self, config: ServerConfig, store: JobStore, notifier: Notifier, supervisor: Supervisor):
        self.config, self.store, self.notifier, self.supervisor = config, store, notifier, supervisor
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def models(self) -> list[dict[str, Any]]:
        """Every model id a request may name, with family and source."""
        return await self._entry("models", ["models"])

    async def resolve(self, model_id: str | None) -> str:
        """The model id a request runs on; NotFound for ids the server does not offer."""
        model_id = model_id or self.config.default_model
        rows = await self.models()
        if model_id not in {r["id"] for r in rows}:
            raise NotFound(f"unknown model {model_id!r}; this server offers: {', '.join(r['id'] for r in rows)}")
        return model_id

    async def capabilities(self, model_id: str | None) -> dict[str, Any]:
        """The JSON `mediagen modes` prints for the model."""
        model_id = await self.resolve(model_id)
        return await self._entry(f"caps:{model_id}", ["caps", model_id])

    def _fresh(self, key: str) -> dict[str, Any] | None:
        v = self.store.cache_get(key)
        if v is not None and not v["ok"] and time.time() - v.get("at", 0.0) > ERROR_TTL_S:
            return None
        return v

    async def _entry(self, key: str, probe_args: list[str]) -> Any:
        v = self._fresh(key)
        if v is None:
            async with self._locks[key]:
                v = self._fresh(key) or await self._wait_for_worker(key)
                if v is None:
                    v = await self._probe(probe_args)
                    self.store.cache_set(key, v)
        if v["ok"]:
            return v["value"]
        raise ModelUnavailable(f"{v['error']} (the model is listed but cannot be loaded now)")

    async def _wait_for_worker(self, key: str) -> dict[str, Any] | None:
        """While the worker is starting it publishes the model list and the default model: wait for that."""
        deadline = time.monotonic() + STARTUP_WAIT_S
        with self.notifier.subscribe(f"cache:{key}") as ev:
            while self.supervisor.state == "starting" and time.monotonic() < deadline:
                if key not in ("models", f"caps:{self.config.default_model}"):
                    return None
                try:
                    await asyncio.wait_for(ev.wait(), 0.5)
                except asyncio.TimeoutError:
                    pass
                v = self._fresh(key)
                if v is not None:
                    return v
        return self._fresh(key)

    async def _probe(self, args: list[str]) -> dict[str, Any]:
        """Ask a short-lived child process (which may import torch and load the model)."""
        import json

        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mediagen.server.models", *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=child_env())
        try:
            out, _ = await asyncio.wait_for(proc.communicate(self.config.to_json().encode() + b"\n"),
                                            PROBE_TIMEOUT_S)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            return {"ok": False, "kind": "error", "error": f"loading the model took over {PROBE_TIMEOUT_S:g} s",
                    "at": time.time()}
        lines = out.decode(errors="replace").strip().splitlines()
        try:
            return json.loads(lines[-1])
        except (IndexError, ValueError):
            return {"ok": False, "kind": "error", "error": f"the model probe failed (exit code {proc.returncode})",
                    "at": time.time()}
