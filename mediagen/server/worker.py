"""The worker process: claims queued jobs, generates, writes outputs atomically, reports progress.

Started by the supervisor as `python -m mediagen.server.worker TOKEN PARENT_PID` with the config JSON as
the first line on stdin; every later byte on stdin is a wake-up (a job was queued), and EOF means the
server is gone. One line per event goes back on the original stdout ("ready", "job ID", "busy ID",
"idle", "cache KEY"); everything else the process prints goes to stderr. The worker runs at a lower
priority than the HTTP process, dies with its parent, and holds each job under its TOKEN as a lease.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import sys
import time
import traceback
from typing import Any, TextIO

from mediagen.errors import Cancelled, MediagenError
from mediagen.model import Output, Progress
from mediagen.schema import GenerationRequest
from mediagen.server.config import ServerConfig
from mediagen.server.files import DataDir, atomic_write_bytes, disk_full_error, is_disk_full
from mediagen.server.models import answer, capabilities_json, model_rows, open_engine
from mediagen.server.store import JobStore

PREVIEW_INTERVAL_S = 0.5
IDLE_WAIT_S = 2.0


def _read_first_line(fd: int) -> str:
    """The first line on a raw fd (the rest of what arrives there is wake-ups)."""
    buf = b""
    while b"\n" not in buf:
        chunk = os.read(fd, 65536)
        if not chunk:
            raise SystemExit("the server closed the worker's stdin before sending its configuration")
        buf += chunk
    return buf.split(b"\n", 1)[0].decode()


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when the server dies; exit now if it already has."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # elsewhere the parent check in the loop and stdin EOF end the worker
    if os.getppid() != parent_pid:
        os._exit(1)


class Reporter:
    """The progress callback: writes progress (throttled) and previews, and stops on a cancel within one step."""

    def __init__(self, worker: "Worker", job_id: str):
        self.w, self.job_id = worker, job_id
        self.last_write = self.last_preview = 0.0

    def __call__(self, p: Progress) -> None:
        w = self.w
        if os.getppid() != w.parent_pid:
            os._exit(1)  # the server is gone; the job stays 'running' and is recovered at the next start
        now = time.monotonic()
        final = p.item == p.items - 1 and p.step == p.steps
        if now - self.last_write < w.config.progress_interval_s and not final and p.step != 1:
            if w.store.should_stop(self.job_id, w.token):
                raise Cancelled(f"stopped after step {p.step} of {p.steps}")
            return
        self.last_write = now
        preview = False
        if p.preview is not None and (now - self.last_preview >= PREVIEW_INTERVAL_S or final):
            preview = self._write_preview(p)
            self.last_preview = now
        ok = w.store.progress(self.job_id, w.token, item=p.item, items=p.items, step=p.step, steps=p.steps,
                              preview=preview)
        w.send(f"job {self.job_id}")
        if not ok:
            raise Cancelled(f"stopped after step {p.step} of {p.steps}")

    def _write_preview(self, p: Progress) -> bool:
        try:
            image = p.preview()
            buf = io.BytesIO()
            image.save(buf, format="PNG", compress_level=1)
            atomic_write_bytes(self.w.data.job_dir(self.job_id) / "preview.png", buf.getvalue())
            return True
        except OSError as e:  # a preview is optional: a full disk fails the outputs, not the progress
            print(f"worker: preview of job {self.job_id} not written: {e}", file=sys.stderr)
            return False


class Worker:
    """One worker process's state: its config, store connection, lease token and model context."""

    def __init__(self, config: ServerConfig, token: str, parent_pid: int, proto: TextIO):
        self.config, self.token, self.parent_pid, self.proto = config, token, parent_pid, proto
        self.data = DataDir(config.data_dir)
        self.store = JobStore(self.data.db_path)
        self.engine = open_engine(config)

    def send(self, line: str) -> None:
        """One event line to the supervisor."""
        self.proto.write(line + "\n")
        self.proto.flush()

    def publish(self, model_id: str | None = None) -> None:
        """Store the model list and a model's capabilities (or why it cannot load) for the HTTP process."""
        if model_id is None:
            self.store.cache_set("models", {"ok": True, "value": model_rows(self.config)})
            self.send("cache models")
            model_id = self.config.default_model
        key = f"caps:{model_id}"
        if self.store.cache_get(key) is not None:
            return
        value = answer(lambda: capabilities_json(self.engine, model_id))
        if not value["ok"]:
            print(f"worker: model {model_id!r} cannot be loaded: {value['error']}", file=sys.stderr)
        self.store.cache_set(key, value)
        self.send(f"cache {key}")

    def loop(self) -> None:
        """Claim and run jobs until stdin closes."""
        while True:
            job = self.store.claim(self.token)
            if job is not None:
                self.send(f"busy {job['id']}")
                self.run(job)
                self.send("idle")
                continue
            ready, _, _ = select.select([0], [], [], IDLE_WAIT_S)
            if ready and not os.read(0, 65536):
                return  # EOF: the server closed our stdin
            if os.getppid() != self.parent_pid:
                return

    def run(self, job: dict[str, Any]) -> None:
        """Generate one job and record how it ended; only this worker's lease can end it."""
        jid = job["id"]
        self.send(f"job {jid}")
        saved, total = 0, 0
        try:
            req = GenerationRequest.model_validate_json(job["request"])
            self.data.job_dir(jid).mkdir(parents=True, exist_ok=True)
            result = self.engine.generate(req, Reporter(self, jid))
            self.store.set_phase(jid, self.token, "saving")
            self.send(f"job {jid}")
            total = len(result.outputs)
            for i, (out, recipe) in enumerate(zip(result.outputs, result.recipes, strict=True)):
                if not self.store.add_output(jid, self.token, self.save_output(jid, i, out, recipe)):
                    raise Cancelled("the job was taken from this worker")
                saved += 1
                self.send(f"job {jid}")
            self.store.finish(jid, self.token, "succeeded")
            self.publish(result.model)
        except Cancelled as e:
            self.store.finish(jid, self.token, "cancelled", f"cancelled while running: {e}", "cancelled")
        except OSError as e:
            if not is_disk_full(e):
                self._fail_internal(jid, e)
            else:
                kept = f"the {saved} output(s) saved before are kept" if saved else "no output was saved"
                self.store.finish(jid, self.token, "failed",
                                  f"disk full while saving output {saved + 1} of {total}: {e.strerror or e}; {kept}",
                                  "disk_full")
        except (MediagenError, ValueError) as e:
            self.store.finish(jid, self.token, "failed", str(e), "invalid_request")
        except Exception as e:
            self._fail_internal(jid, e)
        finally:
            self.send(f"job {jid}")

    def _fail_internal(self, jid: str, e: BaseException) -> None:
        traceback.print_exc(file=sys.stderr)
        self.store.finish(jid, self.token, "failed", f"internal error: {type(e).__name__}: {e}", "internal_error")

    def save_output(self, jid: str, i: int, out: Output, recipe: dict) -> dict[str, Any]:
        """Write output i atomically with its recipe; ENOSPC when it would pass the data dir's quota."""
        from mediagen.media import save_image, save_video

        folder = self.data.job_dir(jid)
        row: dict[str, Any] = {"idx": i, "kind": out.kind, "seed": out.seed if out.seed is not None
                               else recipe.get("seed"), "recipe": json.dumps(recipe)}
        if out.kind == "image":
            path = save_image(folder / f"output-{i}.png", out.image, recipe)
            row.update(media_type="image/png", width=out.image.size[0], height=out.image.size[1])
        else:
            path = save_video(folder / f"output-{i}.mp4", out.frames, out.fps, audio=out.audio,
                              sample_rate=out.sample_rate, recipe=recipe)
            w, h = out.frames[0].size
            row.update(media_type="video/mp4", width=w, height=h, frames=len(out.frames), fps=float(out.fps),
                       duration=len(out.frames) / float(out.fps), has_audio=int(out.audio is not None))
        size = path.stat().st_size
        quota = self.config.disk_quota_bytes
        if quota is not None:
            used = self.store.total_output_bytes()
            if used + size > quota:
                path.unlink()
                raise disk_full_error(used, quota, size)
        row.update(path=self.data.relative(path), bytes=size)
        return row


def main(argv: list[str] | None = None) -> int:
    """Worker entry point."""
    argv = sys.argv[1:] if argv is None else argv
    token, parent_pid = argv[0], int(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when the worker stops
    _die_with_parent(parent_pid)
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # prints from models and libraries go to stderr, not into the event stream
    config = ServerConfig.from_json(_read_first_line(0))
    if config.worker_nice:
        os.nice(config.worker_nice)
    if config.worker_threads:
        import torch

        torch.set_num_threads(config.worker_threads)
    os.chdir(config.data_dir)  # upload references (uploads/<sha>.png) resolve here
    worker = Worker(config, token, parent_pid, proto)
    worker.publish()
    worker.send("ready")
    worker.loop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
