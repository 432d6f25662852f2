"""The native API under /api: jobs, uploads, models, the request schema, progress streams and files."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, AsyncIterator

from fastapi import Body, Depends, File, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from mediagen.schema import GenerationRequest, Mode, request_json_schema
from mediagen.server.files import NotFound, check_job_id
from mediagen.server.jobs import JobList, JobStatus, JobView, Server, UploadView
from mediagen.server.routing import route
from mediagen.server.security import SESSION_COOKIE, check_login
from mediagen.server.store import TERMINAL

KEEPALIVE_S = 15.0
IMMUTABLE = {"Cache-Control": "private, max-age=31536000, immutable"}


def server(request: Request) -> Server:
    """The app's Server (a dependency)."""
    return request.app.state.server


ServerDep = Annotated[Server, Depends(server)]


@route("GET", "/api/health", tags=["server"])
async def health(s: ServerDep) -> dict[str, Any]:
    """Worker state, job counts and queue room."""
    return s.health()


@route("GET", "/api/schema", tags=["models"])
async def schema() -> dict[str, Any]:
    """The GenerationRequest JSON schema (the UI builds its form from it)."""
    return request_json_schema()


@route("GET", "/api/models", tags=["models"])
async def models(s: ServerDep) -> dict[str, Any]:
    """Models a request may name, and the default."""
    return {"models": await s.catalog.models(), "default": s.config.default_model}


@route("GET", "/api/models/{model_id:path}/capabilities", tags=["models"])
async def capabilities(s: ServerDep, model_id: str) -> dict[str, Any]:
    """A model's modes, conditions and defaults: the JSON `mediagen modes` prints."""
    return await s.catalog.capabilities(model_id)


@route("POST", "/api/uploads", status_code=201, response_model=UploadView, tags=["jobs"])
async def upload(s: ServerDep,
                 file: Annotated[UploadFile, File(description="PNG, JPEG, WebP, GIF or BMP")]) -> UploadView:
    """Store an input image (re-encoded as PNG); name the returned `ref` in a request.

    Multipart posts carry `Authorization` or `X-Mediagen-CSRF: 1` (browsers cannot add either cross-site).
    """
    data = await file.read(s.config.max_upload_bytes + 1)
    u = await s.upload(data, file.filename or "upload")
    return UploadView(ref=u.ref, width=u.width, height=u.height, mode=u.mode, bytes=u.bytes)


@route("POST", "/api/jobs", status_code=202, response_model=JobView, tags=["jobs"])
async def submit(s: ServerDep, req: GenerationRequest, response: Response) -> JobView:
    """Queue a generation; the mode follows from the inputs. Inputs are data: URIs or upload refs."""
    job = await s.submit(req, "api")
    response.headers["Location"] = f"/api/jobs/{job['id']}"
    return s.view(job)


@route("GET", "/api/jobs", response_model=JobList, tags=["jobs"])
async def history(s: ServerDep, q: Annotated[str | None, Query(description="text the prompt contains")] = None,
                  mode: Mode | None = None,
                  status: JobStatus | None = None,
                  before: Annotated[float | None, Query(description="created-time cursor from next_before")] = None,
                  limit: Annotated[int, Query(ge=1, le=200)] = 50) -> JobList:
    """History, newest first, searchable by prompt text, mode and status."""
    rows = s.store.search(text=q, mode=mode.value if mode else None, status=status, before=before, limit=limit)
    return JobList(jobs=s.views(rows), next_before=rows[-1]["created"] if len(rows) == limit else None)


@route("GET", "/api/jobs/{job_id}", response_model=JobView, tags=["jobs"])
async def get_job(s: ServerDep, job_id: str) -> JobView:
    """Status, progress (step/total, ETA), preview and outputs of a job."""
    return s.view(s.job(job_id))


@route("GET", "/api/jobs/{job_id}/events", tags=["jobs"],
            responses={200: {"content": {"text/event-stream": {}}, "description": "`job` events, then `end`"}})
async def job_events(s: ServerDep, job_id: str, request: Request) -> StreamingResponse:
    """Server-sent events: a `job` event (the JobView) on every change, `end` once the job has ended."""
    s.job(job_id)

    async def stream() -> AsyncIterator[str]:
        last = None
        with s.notifier.subscribe(job_id) as ev:
            while True:
                ev.clear()
                job = s.store.get(job_id)
                if job is None:
                    yield "event: end\ndata: {\"deleted\": true}\n\n"
                    return
                if job["version"] != last:
                    last = job["version"]
                    yield f"event: job\ndata: {s.view(job).model_dump_json()}\n\n"
                if job["status"] in TERMINAL:
                    yield f"event: end\ndata: {json.dumps({'status': job['status']})}\n\n"
                    return
                try:
                    await asyncio.wait_for(ev.wait(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@route("POST", "/api/jobs/{job_id}/cancel", response_model=JobView, tags=["jobs"])
async def cancel(s: ServerDep, job_id: str) -> JobView:
    """Cancel: a queued job at once, a running one within one denoising step."""
    return s.view(s.cancel(job_id))


@route("POST", "/api/jobs/{job_id}/rerun", status_code=202, response_model=JobView, tags=["jobs"])
async def rerun(s: ServerDep, job_id: str, response: Response,
                output: Annotated[int, Query(ge=0)] = 0) -> JobView:
    """Queue the request that made output `output` again (same seed, so the same result)."""
    job = await s.submit(s.rerun_request(job_id, output), "rerun")
    response.headers["Location"] = f"/api/jobs/{job['id']}"
    return s.view(job)


@route("DELETE", "/api/jobs/{job_id}", status_code=204, tags=["jobs"])
async def delete(s: ServerDep, job_id: str) -> Response:
    """Remove an ended job and its files from history."""
    s.delete(job_id)
    return Response(status_code=204)


@route("GET", "/api/jobs/{job_id}/preview", tags=["files"], response_class=FileResponse)
async def preview(s: ServerDep, job_id: str) -> FileResponse:
    """The latest preview of a running job (small PNG)."""
    path = s.data.job_dir(s.job(job_id)["id"]) / "preview.png"
    if not path.is_file():
        raise NotFound(f"job {job_id} has no preview yet")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})


def _output(s: Server, job_id: str, index: int) -> dict[str, Any]:
    out = s.store.output(check_job_id(job_id), index)
    if out is None:
        raise NotFound(f"job {job_id} has no output {index}")
    return out


@route("GET", "/api/jobs/{job_id}/outputs/{index}", tags=["files"], response_class=FileResponse)
async def output_file(s: ServerDep, job_id: str, index: int) -> FileResponse:
    """Download an output (PNG image, or MP4 clip with its sound)."""
    out = _output(s, job_id, index)
    path = s.data.inside(s.data.root / out["path"])
    ext = path.suffix
    return FileResponse(path, media_type=out["media_type"], headers=IMMUTABLE,
                        filename=f"mediagen-{job_id[:8]}-{index}{ext}", content_disposition_type="inline")


@route("GET", "/api/jobs/{job_id}/outputs/{index}/recipe", tags=["files"])
async def output_recipe(s: ServerDep, job_id: str, index: int) -> JSONResponse:
    """The recipe embedded in an output: the full request, model, weights hash, seed, version."""
    return JSONResponse(json.loads(_output(s, job_id, index)["recipe"] or "{}"))


@route("POST", "/api/login", tags=["server"])
async def login(s: ServerDep, response: Response,
                body: Annotated[dict[str, Any], Body(examples=[{"token": "..."}])]) -> dict[str, Any]:
    """Trade the token for a session cookie (what the web UI uses)."""
    if not s.config.token:
        return {"ok": True, "auth": False}
    value = check_login(s.config, s.secret, body.get("token"))
    if value is None:
        return JSONResponse({"detail": "wrong token", "code": "unauthorized"}, status_code=401)
    response.set_cookie(SESSION_COOKIE, value, httponly=True, samesite="strict", path="/")
    return {"ok": True, "auth": True}


@route("POST", "/api/logout", tags=["server"])
async def logout(response: Response) -> dict[str, Any]:
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"ok": True}
