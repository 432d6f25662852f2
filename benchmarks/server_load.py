"""Load benchmark for `mediagen serve`: N concurrent clients on loopback submit jobs and poll their status.

Starts a server in a fresh data directory, runs the clients for a bounded time, and prints error counts
(429s apart), the server's and worker's RSS over time, and p50/p99 latency of status calls made while the
worker was busy (target: p99 < 50 ms). Every request has a timeout and every loop a bound.

    python benchmarks/server_load.py                    # 8 clients, 2 minutes
    python benchmarks/server_load.py --clients 4 --duration 30
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "server" / "tiny_model.py"
REQUEST_TIMEOUT_S = 10.0
POLL_S = 0.1


def builtin_ready() -> bool:
    weights = REPO / "mediagen" / "families" / "builtin" / "weights"
    return weights.is_dir() and any(weights.glob("*.safetensors"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace, data: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mediagen.server", "--data", str(data), "--port", str(port), "--model", args.model,
           "--max-queue", str(args.max_queue), "--log-level", "warning"]
    if args.model == "tiny":
        cmd += ["--model-plugin", f"tiny={TINY}:load"]
    if args.worker_threads:
        cmd += ["--worker-threads", str(args.worker_threads)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(data.parent / "server.log", "wb"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: see {data.parent / 'server.log'}")
        try:
            if httpx.get(url + "/api/health", timeout=2).json()["worker"]["state"] == "idle":
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server's worker did not become ready in 180 s")


class Stats:
    """Counters shared by the client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.busy_latency: list[float] = []
        self.idle_latency: list[float] = []
        self.errors: Counter[str] = Counter()
        self.jobs: Counter[str] = Counter()
        self.rejected = 0

    def error(self, what: str) -> None:
        with self.lock:
            self.errors[what] += 1


def client_loop(url: str, request: dict, deadline: float, stats: Stats, max_loops: int) -> None:
    """Submit a job, poll it to its end, repeat until the deadline (at most max_loops requests)."""
    loops = 0
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as c:
        while time.monotonic() < deadline and loops < max_loops:
            loops += 1
            try:
                r = c.post("/api/jobs", json=request)
            except httpx.HTTPError as e:
                stats.error(f"submit {type(e).__name__}")
                continue
            if r.status_code == 429:
                with stats.lock:
                    stats.rejected += 1
                wait = float(r.headers.get("retry-after", "1"))
                time.sleep(min(wait, max(0.0, deadline - time.monotonic()), 5.0))
                continue
            if r.status_code != 202:
                stats.error(f"submit HTTP {r.status_code}")
                continue
            jid = r.json()["id"]
            while time.monotonic() < deadline and loops < max_loops:
                loops += 1
                t0 = time.perf_counter()
                try:
                    s = c.get(f"/api/jobs/{jid}")
                except httpx.HTTPError as e:
                    stats.error(f"status {type(e).__name__}")
                    break
                dt = time.perf_counter() - t0
                if s.status_code != 200:
                    stats.error(f"status HTTP {s.status_code}")
                    break
                status = s.json()["status"]
                with stats.lock:
                    (stats.busy_latency if status in ("queued", "running") else stats.idle_latency).append(dt)
                if status in ("succeeded", "failed", "cancelled"):
                    with stats.lock:
                        stats.jobs[status] += 1
                    break
                time.sleep(POLL_S)


def sample_rss(proc: psutil.Process, stop: threading.Event, every: float,
               out: list[tuple[float, float, float]]) -> None:
    """Every `every` seconds: (elapsed s, server RSS MiB, worker RSS MiB) until `stop`."""
    t0 = time.monotonic()
    while not stop.wait(every):
        try:
            server = proc.memory_info().rss / 2**20
            worker = sum(ch.memory_info().rss for ch in proc.children(recursive=True)) / 2**20
        except psutil.Error:
            return
        out.append((time.monotonic() - t0, server, worker))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--duration", type=float, default=120.0, help="seconds of load (default 120)")
    p.add_argument("--model", default="builtin" if builtin_ready() else "tiny",
                   help="model to load (default: builtin when its weights are present, else the tiny test model)")
    p.add_argument("--size", type=int, default=128, help="image side in pixels")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--max-queue", type=int, default=16, help="server queue limit (429s beyond it)")
    p.add_argument("--worker-threads", type=int, default=None)
    p.add_argument("--rss-every", type=float, default=5.0, help="seconds between RSS samples")
    args = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="mediagen-load-"))
    port = free_port()
    server = start_server(args, tmp / "data", port)
    url = f"http://127.0.0.1:{port}"
    request = {"prompt": "a red cube left of a blue sphere", "width": args.size, "height": args.size,
               "steps": args.steps}
    print(f"server {url} model={args.model} clients={args.clients} duration={args.duration:g}s "
          f"size={args.size} steps={args.steps} max_queue={args.max_queue}", flush=True)

    stats, rss, stop = Stats(), [], threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(psutil.Process(server.pid), stop, args.rss_every, rss))
    sampler.start()
    deadline = time.monotonic() + args.duration
    max_loops = int(args.duration / POLL_S) + 10
    threads = [threading.Thread(target=client_loop, args=(url, request, deadline, stats, max_loops))
               for _ in range(args.clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.duration + 2 * REQUEST_TIMEOUT_S + 30)
    elapsed = time.monotonic() - t0
    stop.set()
    sampler.join()
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()

    busy = stats.busy_latency
    print(f"\nran {elapsed:.1f} s; jobs: {dict(stats.jobs)}; 429 answers: {stats.rejected}")
    print(f"errors (not counting 429): {sum(stats.errors.values())} {dict(stats.errors) or ''}")
    print(f"status calls while the worker was busy: {len(busy)}; p50 {pct(busy, 50) * 1e3:.1f} ms, "
          f"p99 {pct(busy, 99) * 1e3:.1f} ms, max {max(busy, default=float('nan')) * 1e3:.1f} ms "
          f"(target p99 < 50 ms: {'met' if busy and pct(busy, 99) < 0.05 else 'NOT met'})")
    if stats.idle_latency:
        print(f"other status calls: {len(stats.idle_latency)}; p50 {pct(stats.idle_latency, 50) * 1e3:.1f} ms")
    print("RSS over time (MiB):   t(s)   server   worker")
    for t, s, w in rss:
        print(f"                     {t:6.0f} {s:8.1f} {w:8.1f}")
    if len(rss) >= 4:
        q = len(rss) // 4
        first = statistics.median(s for _, s, _ in rss[:q])
        last = statistics.median(s for _, s, _ in rss[-q:])
        print(f"server RSS first quarter {first:.1f} MiB -> last quarter {last:.1f} MiB ({last - first:+.1f})")
    return 1 if stats.errors else 0


if __name__ == "__main__":
    sys.exit(main())
