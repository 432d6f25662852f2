"""Route declarations without import-time registration: handlers are marked, and each app builds its router."""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from fastapi import APIRouter


def route(method: str, path: str, **options: Any) -> Callable[[Callable], Callable]:
    """Mark a handler with its method, path and FastAPI route options."""

    def mark(fn: Callable) -> Callable:
        fn.route = (method, path, options)
        return fn

    return mark


def router_for(module: ModuleType) -> APIRouter:
    """A fresh router with every marked handler of `module`, in source order."""
    handlers = [f for f in vars(module).values() if callable(f) and hasattr(f, "route")]
    router = APIRouter()
    for fn in sorted(handlers, key=lambda f: f.__code__.co_firstlineno):
        method, path, options = fn.route
        router.add_api_route(path, fn, methods=[method], **options)
    return router
