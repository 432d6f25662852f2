"""In the HTTP process: change notifications, and the supervisor that keeps one worker process alive.

When the worker dies, the job it held goes back to the queue (or fails once it has used its attempts,
so a job that kills the worker never crash-loops); the worker is restarted at once after a death
mid-job and with growing back-off when it dies before it is ready.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterator

from mediagen.server.config import ServerConfig
from mediagen.server.store import JobStore

ANY_JOB = "*"
MAX_BACKOFF_S = 30.0


class Notifier:
    """Wakes coroutines waiting on a key: a job id, ANY_JOB, or 'cache:<key>'."""

    def __init__(self) -> None:
        self._subs: dict[str, set[asyncio.Event]] = defaultdict(set)

    @contextmanager
    def subscribe(self, key: str) -> Iterator[asyncio.Event]:
        ev = asyncio.Event()
        self._subs[key].add(ev)
        try:
            yield ev
        finally:
            self._subs[key].discard(ev)
            if not self._subs[key]:
                del self._subs[key]

    def notify(self, key: str) -> None:
        for ev in self._subs.get(key, ()):
            ev.set()

    def job_changed(self, job_id: str) -> None:
        self.notify(job_id)
        self.notify(ANY_JOB)


def describe_exit(rc: int | None) -> str:
    """'exit code 3' or 'killed by signal 9 (SIGKILL, e.g. the out-of-memory killer)'."""
    if rc is None:
        return "unknown exit"
    if rc >= 0:
        return f"exit code {rc}"
    try:
        name = signal.Signals(-rc).name
    except ValueError:
        name = f"signal {-rc}"
    hint = ", e.g. the out-of-memory killer" if -rc == signal.SIGKILL else ""
    return f"killed by signal {-rc} ({name}{hint})"


class Supervisor:
    """Starts the worker, relays its events, releases its job when it dies, and restarts it."""

    def __init__(self, config: ServerConfig, store: JobStore, notifier: Notifier):
        self.config, self.store, self.notifier = config, store, notifier
        self.state = "stopped"  # starting | idle | busy | backoff | stopped
        self.pid: int | None = None
        self.current_job: str | None = None
        self.restarts = 0
        self.last_exit: str | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False

    def recover(self) -> None:
        """Requeue jobs a previous server left running (its worker died with it)."""
        for jid in self.store.release(None, "interrupted: the server stopped while this job ran",
                                      self.config.max_attempts, charge=False):
            self.notifier.job_changed(jid)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mediagen-worker-supervisor")

    def wake(self) -> None:
        """Tell an idle worker a job is waiting."""
        proc = self._proc
        if self.state == "idle" and proc is not None and proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.write(b"\n")  # a busy worker claims the next job by itself when it is done

    def info(self) -> dict:
        return {"state": self.state, "pid": self.pid, "job": self.current_job, "restarts": self.restarts,
                "last_exit": self.last_exit}

    async def _run(self) -> None:
        backoff = 0.5
        while not self._stopping:
            token = "w" + uuid.uuid4().hex[:16]
            ready = await self._run_one(token)
            if self._stopping:
                break
            self.restarts += 1
            if ready:
                backoff = 0.5
                await asyncio.sleep(0.1)
            else:
                self.state = "backoff"
                print(f"mediagen serve: the worker failed to start ({self.last_exit}); retrying in {backoff:g} s",
                      file=sys.stderr)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _run_one(self, token: str) -> bool:
        """Run one worker process to its end; True when it got ready before it ended."""
        self.state = "starting"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mediagen.server.worker", token, str(os.getpid()),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=child_env())
        self._proc, self.pid = proc, proc.pid
        proc.stdin.write(self.config.to_json().encode() + b"\n")
        ready = False
        try:
            async for raw in proc.stdout:
                kind, _, arg = raw.decode(errors="replace").strip().partition(" ")
                if kind == "job":
                    self.notifier.job_changed(arg)
                elif kind == "busy":
                    self.state, self.current_job = "busy", arg
                elif kind == "idle":
                    self.state, self.current_job = "idle", None
                elif kind == "cache":
                    self.notifier.notify(f"cache:{arg}")
                elif kind == "ready":
                    ready, self.state = True, "idle"
                    self.wake()
        finally:
            rc = await proc.wait()
            self._proc, self.pid, self.current_job = None, None, None
            self.last_exit = describe_exit(rc)
            if not self._stopping:
                reason = f"the worker process died while running this job ({self.last_exit})"
                for jid in self.store.release(token, reason, self.config.max_attempts):
                    self.notifier.job_changed(jid)
            else:
                for jid in self.store.release(token, "interrupted: the server stopped while this job ran",
                                              self.config.max_attempts, charge=False):
                    self.notifier.job_changed(jid)
        return ready

    async def stop(self) -> None:
        """Stop the worker (its running job goes back to the queue without using an attempt)."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except asyncio.TimeoutError:
                proc.kill()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 10.0)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        self.state = "stopped"


def child_env() -> dict[str, str]:
    """The server's environment, with the package importable from the worker's working directory."""
    env = dict(os.environ)
    import mediagen

    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(mediagen.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle torch threads sleep instead of spinning
    return env
