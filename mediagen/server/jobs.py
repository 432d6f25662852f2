"""The HTTP process's job service: submit, view, wait for and cancel jobs; the JSON shapes clients see."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import time
from typing import Any, Awaitable, Callable, Literal

from pydantic import BaseModel, Field

from mediagen.capabilities import Capabilities, check_request
from mediagen.errors import RequestError
from mediagen.schema import GenerationRequest
from mediagen.server.catalog import Catalog
from mediagen.server.config import ServerConfig
from mediagen.server.files import DataDir, NotFound, check_job_id, new_job_id
from mediagen.server.security import sign_path
from mediagen.server.store import TERMINAL, JobStore
from mediagen.server.supervisor import Notifier, Supervisor
from mediagen.server.uploads import Limits, Upload, decode_image, localise_request, store_image

DECODE_SLOTS = 2  # uploads decoded at once (bounds memory under many concurrent uploads)


class ProgressView(BaseModel):
    """Where a running job is: output `item` of `items`, step `step` of `steps`."""

    item: int
    items: int
    step: int
    steps: int
    fraction: float = Field(description="0..1 over all outputs and steps")
    elapsed_s: float
    eta_s: float | None = Field(None, description="seconds left, from the measured step rate")


class OutputView(BaseModel):
    """One output: an image, a clip (optionally with sound), or sound alone."""

    index: int
    kind: Literal["image", "video", "audio"]
    media_type: str
    url: str
    recipe_url: str
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    fps: float | None = None
    duration_s: float | None = None
    has_audio: bool = False
    seed: int | None = None
    bytes: int


class ErrorView(BaseModel):
    message: str
    code: str | None = None


JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobView(BaseModel):
    """A job as the API reports it."""

    id: str
    status: JobStatus
    phase: str | None = Field(None, description="loading, generating or saving while running")
    source: str
    mode: str
    model: str | None
    prompt: str
    created: float
    started: float | None = None
    finished: float | None = None
    attempts: int
    queue_position: int | None = None
    cancel_requested: bool = False
    progress: ProgressView | None = None
    preview_url: str | None = None
    outputs: list[OutputView] = Field(default_factory=list)
    error: ErrorView | None = None
    last_error: str | None = Field(None, description="why an earlier attempt did not finish")
    request: dict[str, Any]
    links: dict[str, str]


class JobList(BaseModel):
    jobs: list[JobView]
    next_before: float | None = Field(None, description="pass as ?before= for the next page")


class UploadView(BaseModel):
    ref: str = Field(description="name this in a request's image/mask fields")
    width: int
    height: int
    mode: str
    bytes: int


class Server:
    """Everything the routes use, opened in the app's lifespan (in the event loop's thread)."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.data = DataDir.create(config.data_dir)
        self.secret = self.data.secret()
        self.limits = Limits(config.max_upload_bytes, config.max_pixels, config.max_side)
        self.notifier = Notifier()
        self.store: JobStore | None = None
        self.supervisor: Supervisor | None = None
        self.catalog: Catalog | None = None
        self._lock_fd: int | None = None
        self._decode = asyncio.Semaphore(DECODE_SLOTS)

    async def open(self) -> None:
        """Take the data dir, open the store, recover interrupted jobs, start the worker."""
        self._lock_fd = os.open(self.data.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise RequestError(
                f"another mediagen server is using {self.data.root}: stop it or pass another --data") from None
        self.store = JobStore(self.data.db_path)
        self.store.cache_clear()  # installed models may have changed while the server was down
        self.supervisor = Supervisor(self.config, self.store, self.notifier)
        self.catalog = Catalog(self.config, self.store, self.notifier, self.supervisor)
        self.supervisor.recover()
        self.supervisor.start()

    async def close(self) -> None:
        if self.supervisor is not None:
            await self.supervisor.stop()
        if self.store is not None:
            self.store.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)

    # -- jobs ------------------------------------------------------------------------------------
    async def submit(self, req: GenerationRequest, source: str) -> dict[str, Any]:
        """Check the request against its model, store its inputs, queue it (QueueFull when full)."""
        model_id = await self.catalog.resolve(req.model)
        caps = Capabilities(**await self.catalog.capabilities(model_id))
        mode = check_request(req, caps)
        async with self._decode:
            req = await asyncio.to_thread(localise_request, req, self.data, self.limits,
                                          self.config.settings.home / "loras")
        req = req.model_copy(update={"model": model_id})
        jid = new_job_id()
        self.store.submit({"id": jid, "created": time.time(), "source": source, "mode": mode.value,
                           "model": model_id, "prompt": req.prompt, "request": req.model_dump_json()},
                          self.config.max_queue)
        self.notifier.job_changed(jid)
        self.supervisor.wake()
        return self.store.get(jid)

    def job(self, job_id: str) -> dict[str, Any]:
        job = self.store.get(check_job_id(job_id))
        if job is None:
            raise NotFound(f"no job {job_id}: it never existed or was deleted")
        return job

    def cancel(self, job_id: str) -> dict[str, Any]:
        self.job(job_id)
        self.store.request_cancel(job_id)
        self.notifier.job_changed(job_id)
        return self.job(job_id)

    def delete(self, job_id: str) -> None:
        job = self.job(job_id)
        if job["status"] not in TERMINAL:
            raise RequestError(f"job {job_id} is {job['status']}: cancel it before deleting it")
        self.store.delete(job_id)
        shutil.rmtree(self.data.job_dir(job_id), ignore_errors=True)
        self.notifier.job_changed(job_id)

    async def wait(self, job_id: str, is_gone: Callable[[], Awaitable[bool]],
                   poll_s: float = 1.0) -> dict[str, Any] | None:
        """The job once it has ended; None when the client went away first (the job is then cancelled)."""
        with self.notifier.subscribe(job_id) as ev:
            while True:
                ev.clear()
                job = self.job(job_id)
                if job["status"] in TERMINAL:
                    return job
                try:
                    await asyncio.wait_for(ev.wait(), poll_s)
                except asyncio.TimeoutError:
                    if await is_gone():
                        self.cancel(job_id)
                        return None

    def rerun_request(self, job_id: str, index: int) -> GenerationRequest:
        """The job's request with output `index`'s seed and n=1: it regenerates that output."""
        job = self.job(job_id)
        out = self.store.output(job_id, index)
        if out is None:
            raise NotFound(f"job {job_id} has no output {index}")
        req = GenerationRequest.model_validate_json(job["request"])
        return req.model_copy(update={"seed": out["seed"], "n": 1})

    async def upload(self, data: bytes, what: str = "image") -> Upload:
        async with self._decode:
            return await asyncio.to_thread(lambda: store_image(self.data, decode_image(data, self.limits, what)))

    # -- views -----------------------------------------------------------------------------------
    def views(self, jobs: list[dict[str, Any]], base: str = "", signed: bool = False) -> list[JobView]:
        outputs = self.store.outputs([j["id"] for j in jobs])
        return [self.view(j, outputs[j["id"]], base, signed) for j in jobs]

    def view(self, job: dict[str, Any], outputs: list[dict[str, Any]] | None = None, base: str = "",
             signed: bool = False) -> JobView:
        """The API shape of a job; `signed` output URLs work without the token for an hour."""
        jid = job["id"]
        if outputs is None:
            outputs = self.store.outputs([jid])[jid]

        def url(path: str) -> str:
            return base + (sign_path(self.secret, path) if signed else path)

        outs = [OutputView(index=o["idx"], kind=o["kind"], media_type=o["media_type"],
                           url=url(f"/api/jobs/{jid}/outputs/{o['idx']}"),
                           recipe_url=url(f"/api/jobs/{jid}/outputs/{o['idx']}/recipe"),
                           width=o["width"], height=o["height"], frames=o["frames"], fps=o["fps"],
                           duration_s=o["duration"], has_audio=bool(o["has_audio"]), seed=o["seed"], bytes=o["bytes"])
                for o in outputs]
        error = ErrorView(message=job["error"], code=job["error_code"]) if job["error"] else None
        return JobView(
            id=jid, status=job["status"], phase=job["phase"], source=job["source"], mode=job["mode"],
            model=job["model"], prompt=job["prompt"], created=job["created"], started=job["started"],
            finished=job["finished"], attempts=job["attempts"], queue_position=self.store.queue_position(job),
            cancel_requested=bool(job["cancel"]) and job["status"] == "running", progress=_progress(job),
            preview_url=url(f"/api/jobs/{jid}/preview") + ("&" if signed else "?") + f"v={job['preview']}"
            if job["preview"] else None,
            outputs=outs, error=error, last_error=job["last_error"],
            request=json.loads(job["request"]),
            links={"self": f"/api/jobs/{jid}", "events": f"/api/jobs/{jid}/events",
                   "cancel": f"/api/jobs/{jid}/cancel"})

    def health(self) -> dict[str, Any]:
        counts = self.store.counts()
        return {"ok": True, "worker": self.supervisor.info(), "jobs": counts,
                "queue": {"active": counts["queued"] + counts["running"], "max": self.config.max_queue},
                "default_model": self.config.default_model, "auth": bool(self.config.token)}


def _progress(job: dict[str, Any]) -> ProgressView | None:
    """Progress and ETA of a running job from its recorded step times."""
    if job["status"] != "running" or not job["steps"]:
        return None
    now = time.time()
    total = job["items"] * job["steps"]
    done = job["item"] * job["steps"] + job["step"]
    eta = None
    if job["first_step"] is not None and job["first_done"] is not None and done > job["first_done"]:
        rate = (job["progress_at"] - job["first_step"]) / (done - job["first_done"])  # seconds per step
        eta = max(0.0, rate * (total - done) - (now - job["progress_at"]))
    return ProgressView(item=job["item"], items=job["items"], step=job["step"], steps=job["steps"],
                        fraction=done / total, elapsed_s=now - (job["started"] or now), eta_s=eta)
