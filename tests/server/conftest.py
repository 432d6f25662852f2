"""Fixtures: real `mediagen serve` processes on loopback, each with its own data directory.

The default model is the built-in one once its weights are in the package; until then the tiny test
model (tiny_model.py, an untrained net sampled by the real engine). The tiny model is always offered as
"tiny" too: the fault tests use it because they need jobs of a controlled length; "missing" is a plugin
whose weights are not installed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TINY = HERE / "tiny_model.py"
ARTIFACTS = HERE / "artifacts"


def builtin_ready() -> bool:
    """True when the built-in model's weights are in the package."""
    weights = REPO / "mediagen" / "families" / "builtin" / "weights"
    return weights.is_dir() and any(weights.glob("*.safetensors"))


DEFAULT_MODEL = "builtin" if builtin_ready() else "tiny"
STEPS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """One server process (and its worker) on a free loopback port."""

    def __init__(self, data: Path, *args: str, token: str | None = None, model: str = DEFAULT_MODEL):
        self.data, self.token, self.port = Path(data), token, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = ["--data", str(self.data), "--port", str(self.port), "--model", model,
                     "--model-plugin", f"tiny={TINY}:load", "--model-plugin", f"missing={TINY}:load_missing",
                     "--worker-threads", "1", "--log-level", "warning", *args]
        if token:
            self.args += ["--token", token]
        self.proc: subprocess.Popen | None = None
        self.log = self.data.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 90.0) -> "Served":
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("MEDIAGEN_TOKEN", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "mediagen.server", *self.args], cwd=REPO, env=env,
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        self.wait_worker("idle", timeout)
        return self

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=60.0, **kw)

    def health(self) -> dict:
        return httpx.get(self.url + "/api/health", headers=self.headers(), timeout=10.0).json()

    def wait_worker(self, want: str, timeout: float = 90.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                h = self.health()
                if h["worker"]["state"] == want:
                    return h
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"worker not {want} after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self) -> None:
        self.proc.kill()  # SIGKILL: no shutdown code runs
        self.proc.wait()


def wait_job(client: httpx.Client, job_id: str, timeout: float = 90.0, until=None) -> dict:
    """Poll a job until it ends (or `until(job)` holds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if (until(job) if until else job["status"] in ("succeeded", "failed", "cancelled")):
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} did not get there in {timeout} s: {job}")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A shared server with the default model (tests use small sizes and 2 steps)."""
    s = Served(tmp_path_factory.mktemp("server") / "data").start()
    yield s
    s.stop()


@pytest.fixture
def client(server):
    with server.client() as c:
        yield c


@pytest.fixture(scope="session")
def caps(server) -> dict:
    return httpx.get(server.url + f"/api/models/{DEFAULT_MODEL}/capabilities").json()
