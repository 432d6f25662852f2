"""`mediagen serve`: the app factory and the command-line entry point.

Routes: the native API under /api (see routes.py), OpenAI-compatible endpoints under /v1
(openai_compat.py), the web UI at / with its files under /static, and the OpenAPI spec at /openapi.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from mediagen import __version__
from mediagen.errors import RequestError, UnsupportedError
from mediagen.server.catalog import ModelUnavailable
from mediagen.server.config import DEVICE_AUTO, ServerConfig
from mediagen.server.files import NotFound
from mediagen.server.jobs import Server
from mediagen.server.routing import router_for
from mediagen.server.security import BodyTooLarge, Guard
from mediagen.server.store import QueueFull
from mediagen.server.uploads import TooLarge

STATIC = Path(__file__).parent / "static"


def _error(request: Request, status: int, message: str, code: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    """OpenAI's error shape under /v1 (400 where the native API says 422), {"detail", "code"} elsewhere."""
    if request.url.path.startswith("/v1/"):
        status = 400 if status == 422 else status
        kind = "requests" if status == 429 else ("invalid_request_error" if status < 500 else "server_error")
        code = {"queue_full": "rate_limit_exceeded"}.get(code, code)
        body: dict[str, Any] = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    else:
        body = {"detail": message, "code": code}
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    from mediagen.server.openai_compat import install_handlers

    table: list[tuple[type[Exception], int, str]] = [
        (NotFound, 404, "not_found"), (TooLarge, 413, "too_large"), (BodyTooLarge, 413, "too_large"),
        (UnsupportedError, 422, "unsupported"), (RequestError, 422, "invalid_request"),
        (ModelUnavailable, 503, "model_unavailable"),
    ]
    for exc_type, status, code in table:
        async def handle(request: Request, exc: Exception, status: int = status, code: str = code) -> JSONResponse:
            return _error(request, status, str(exc), code)

        app.add_exception_handler(exc_type, handle)

    async def queue_full(request: Request, exc: QueueFull) -> JSONResponse:
        return _error(request, 429, str(exc), "queue_full", {"Retry-After": str(exc.retry_after)})

    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if request.url.path.startswith("/v1/"):
            err = exc.errors()[0]
            return _error(request, 400, f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}", "invalid_value")
        return await request_validation_exception_handler(request, exc)

    app.add_exception_handler(QueueFull, queue_full)
    app.add_exception_handler(RequestValidationError, invalid)
    install_handlers(app.add_exception_handler)


def create_app(config: ServerConfig) -> FastAPI:
    """The ASGI app for one data directory; the store and worker start with the app's lifespan."""
    from mediagen.server import openai_compat, routes

    server = Server(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await server.open()
        try:
            yield
        finally:
            await server.close()

    app = FastAPI(title="mediagen", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Generate images (and, as models allow, video and sound) from one request schema. "
                              "Native API under /api, OpenAI-compatible image endpoints under /v1.")
    app.state.server = server
    app.include_router(router_for(routes))
    app.include_router(router_for(openai_compat))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/login", include_in_schema=False)
    async def login_page() -> FileResponse:
        return FileResponse(STATIC / "login.html", headers={"Cache-Control": "no-cache"})

    _install_error_handlers(app)
    app.add_middleware(Guard, config=config, secret=server.secret)
    return app


def parse_bytes(text: str) -> int:
    """'500M', '10G', '123456' -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a size such as 500M or 10G")
    scale = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[m.group(2).upper()]
    return int(float(m.group(1)) * scale)


def _plugin(text: str) -> tuple[str, str]:
    mid, sep, spec = text.partition("=")
    if not sep or not mid or not spec:
        raise argparse.ArgumentTypeError(f"--model-plugin {text!r}: expected ID=MODULE:FUNCTION or ID=FILE.py:FUNCTION")
    return mid, spec


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mediagen serve", description="Run the HTTP API and web UI.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (beyond loopback needs --token)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--data", type=Path, default=None,
                   help="data directory: job database, uploads, outputs (default: $MEDIAGEN_HOME/server)")
    p.add_argument("--token", default=None, help="require this token on every route (default: $MEDIAGEN_TOKEN)")
    p.add_argument("--max-queue", type=int, default=64, help="queued + running jobs before 429 (default 64)")
    p.add_argument("--max-attempts", type=int, default=3, help="worker deaths a job may cause before it fails")
    p.add_argument("--model", default=None, help="default model for requests that name none")
    p.add_argument("--model-plugin", type=_plugin, action="append", default=[], metavar="ID=MODULE:FUNCTION",
                   help="serve a model from a loader function load(id, device=, dtype=) -> LoadedModel")
    p.add_argument("--disk-quota", type=parse_bytes, default=None, help="most bytes of outputs to keep, e.g. 20G")
    p.add_argument("--max-upload-mb", type=int, default=32, help="largest request body in MiB (default 32)")
    p.add_argument("--max-upload-pixels", type=int, default=4096 * 4096, help="largest uploaded image in pixels")
    p.add_argument("--worker-threads", type=int, default=None,
                   help="torch threads for generation (default: one per core; fewer keep the API snappier)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--access-log", action="store_true", help="log every request")
    return p


def config_from_args(args: argparse.Namespace, env: dict[str, str] | None = None) -> ServerConfig:
    """The server config from parsed arguments and MEDIAGEN_* variables (read here, once)."""
    from mediagen.settings import Settings

    env = dict(os.environ) if env is None else env
    # the device is resolved in the worker: detecting it imports torch, which the HTTP process never loads
    settings = Settings.from_env({**env, "MEDIAGEN_DEVICE": env.get("MEDIAGEN_DEVICE") or DEVICE_AUTO})
    if args.model:
        settings = dataclasses.replace(settings, default_model=args.model)
    return ServerConfig(
        data_dir=args.data or settings.home / "server", settings=settings, host=args.host, port=args.port,
        token=args.token or env.get("MEDIAGEN_TOKEN") or None, max_queue=args.max_queue,
        max_attempts=args.max_attempts, max_upload_bytes=args.max_upload_mb * 2**20,
        max_pixels=args.max_upload_pixels, disk_quota_bytes=args.disk_quota,
        model_plugins=tuple(args.model_plugin), worker_threads=args.worker_threads, log_level=args.log_level)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `mediagen serve`."""
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        config.check_bind()
    except RequestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import uvicorn

    app = create_app(config)
    where = f"http://{config.host if ':' not in config.host else f'[{config.host}]'}:{config.port}"
    print(f"mediagen serve: {where} (data: {config.data_dir}; {'token required' if config.token else 'no token'})",
          file=sys.stderr)
    uvicorn.run(app, host=config.host, port=config.port, log_level=config.log_level, access_log=args.access_log,
                timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
