"""Security by default, as one ASGI middleware in front of every route.

- Host check: without a token only loopback Host headers are served (defeats DNS rebinding).
- Token: when set, every route checks `Authorization: Bearer <token>` or the session cookie the UI login
  sets; output URLs handed to OpenAI clients carry their own expiring HMAC signature instead.
- Cross-site requests: a state-changing request is refused when Sec-Fetch-Site says cross-site or
  same-site, when its Origin is not this server, or when it is a form-type post (which browsers send
  cross-site without asking) carrying neither an Authorization header nor the X-Mediagen-CSRF header.
- Body size: requests over the configured limit are refused with 413.
- Response headers: a strict Content-Security-Policy (no inline script, nothing from other origins).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from http.cookies import SimpleCookie
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from mediagen.server.config import ServerConfig, is_loopback

SESSION_COOKIE = "mediagen_session"
CSRF_HEADER = b"x-mediagen-csrf"
PUBLIC_PATHS = frozenset({"/login", "/static/login.js", "/static/style.css", "/api/login"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
URL_TTL_S = 3600
CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
       "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


class BodyTooLarge(Exception):
    """A request body went over the limit while it was being read."""


def session_value(secret: bytes, token: str) -> str:
    """The cookie value proving a UI login with `token` (the token itself is never stored in a cookie)."""
    return hmac.new(secret, b"session:" + token.encode(), hashlib.sha256).hexdigest()


def sign_path(secret: bytes, path: str, now: float | None = None, ttl: int = URL_TTL_S) -> str:
    """`path?exp=...&sig=...`: a URL that works without the token until it expires."""
    exp = int((now or time.time()) + ttl)
    sig = hmac.new(secret, f"{path}\n{exp}".encode(), hashlib.sha256).hexdigest()
    return f"{path}?exp={exp}&sig={sig}"


def signature_ok(secret: bytes, path: str, query: bytes) -> bool:
    """True when the query carries an unexpired signature for exactly this path."""
    q = parse_qs(query.decode("latin-1"))
    try:
        exp, sig = int(q["exp"][0]), q["sig"][0]
    except (KeyError, ValueError, IndexError):
        return False
    want = hmac.new(secret, f"{path}\n{exp}".encode(), hashlib.sha256).hexdigest()
    return exp >= time.time() and hmac.compare_digest(want, sig)


def error_body(path: str, status: int, message: str, code: str) -> bytes:
    """OpenAI's error shape under /v1, FastAPI's {"detail": ...} elsewhere."""
    if path.startswith("/v1/"):
        kind = "invalid_request_error" if status < 500 else "server_error"
        return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()
    return json.dumps({"detail": message, "code": code}).encode()


class Guard:
    """The middleware; see the module docstring for what it enforces."""

    def __init__(self, app: ASGIApp, config: ServerConfig, secret: bytes):
        self.app, self.config, self.secret = app, config, secret
        self.session = session_value(secret, config.token) if config.token else None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        path, method = scope["path"], scope["method"]
        problem = self._check(scope, headers, path, method)
        if problem is not None:
            status, message, code, extra = problem
            await _respond(send, status, error_body(path, status, message, code), extra)
            return
        over: list[bool] = []  # set once the body passes the limit: the app's answer is replaced by a 413
        try:
            await self.app(scope, self._limited(receive, over), self._with_headers(send, over, path))
        except BodyTooLarge:
            pass  # answered in _with_headers, or below if the app sent nothing
        if over and not over[1:]:
            over.append(True)
            status, body = 413, error_body(path, 413, self._too_large(), "too_large")
            await _respond(send, status, body, [])

    def _check(self, scope: dict, headers: dict[bytes, bytes], path: str,
               method: str) -> tuple[int, str, str, list] | None:
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.config.token and not _host_ok(host, self.config.host):
            return 403, (f"Host {host!r} is not served: without a token the server answers only to "
                         "localhost / 127.0.0.1 (set --token to serve other names)"), "host_not_allowed", []
        if self.config.token and path not in PUBLIC_PATHS and not self._authorised(scope, headers, path, method):
            if method == "GET" and b"text/html" in headers.get(b"accept", b"") and not path.startswith(("/api", "/v1")):
                return 303, "log in first", "login_required", [(b"location", b"/login")]
            if path.startswith("/v1/"):
                return 401, "Incorrect API key provided: pass the server's token as the API key", "invalid_api_key", []
            return 401, "this server needs a token: send 'Authorization: Bearer <token>' or log in at /login", \
                "unauthorized", [(b"www-authenticate", b"Bearer")]
        if method not in SAFE_METHODS:
            site = headers.get(b"sec-fetch-site", b"").decode("latin-1")
            if site in ("cross-site", "same-site"):
                return 403, f"cross-site request refused (Sec-Fetch-Site: {site})", "cross_site", []
            origin = headers.get(b"origin", b"").decode("latin-1")
            if origin and origin != "null" and origin.split("://", 1)[-1] != host:
                return 403, f"cross-origin request refused (Origin {origin} is not this server)", "cross_site", []
            if origin == "null":
                return 403, "cross-origin request refused (Origin: null)", "cross_site", []
            ctype = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
            if ctype in FORM_TYPES and b"authorization" not in headers and CSRF_HEADER not in headers:
                return 403, ("form posts need the X-Mediagen-CSRF header (or an Authorization header); "
                             "send JSON or add the header"), "csrf", []
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.config.max_upload_bytes:
            return 413, f"the request body is over the {self.config.max_upload_bytes // 2**20} MiB limit", \
                "too_large", []
        return None

    def _authorised(self, scope: dict, headers: dict[bytes, bytes], path: str, method: str) -> bool:
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth[:7].lower() == "bearer " and hmac.compare_digest(auth[7:].strip().encode(), self.config.token.encode()):
            return True
        cookie = headers.get(b"cookie")
        if cookie:
            jar = SimpleCookie()
            try:
                jar.load(cookie.decode("latin-1"))
            except Exception:
                jar = SimpleCookie()
            got = jar.get(SESSION_COOKIE)
            if got is not None and hmac.compare_digest(got.value.encode(), self.session.encode()):
                return True
        if method in ("GET", "HEAD") and scope.get("query_string"):
            return signature_ok(self.secret, path, scope["query_string"])
        return False

    def _too_large(self) -> str:
        return f"the request body is over the {self.config.max_upload_bytes // 2**20} MiB limit"

    def _limited(self, receive: Callable, over: list[bool]) -> Callable:
        limit, seen = self.config.max_upload_bytes, 0

        async def wrapped() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over[:] = [True]
                    raise BodyTooLarge(self._too_large())
            return message

        return wrapped

    def _with_headers(self, send: Callable, over: list[bool], path: str) -> Callable:
        async def wrapped(message: dict) -> None:
            if over:  # whatever the app makes of the aborted body, the client gets one 413
                if message["type"] == "http.response.start" and not over[1:]:
                    over.append(True)
                    await _respond(send, 413, error_body(path, 413, self._too_large(), "too_large"), [])
                return
            if message["type"] == "http.response.start":
                extra = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                         (b"x-frame-options", b"DENY"), (b"referrer-policy", b"same-origin")]
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        return wrapped


def _headers(scope: dict) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope["headers"]}


def _host_ok(host: str, bind_host: str) -> bool:
    """Loopback names (any port) or the exact bind address."""
    if host.startswith("["):
        name = host[1:].split("]", 1)[0]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return bool(name) and (is_loopback(name) or name == bind_host)


async def _respond(send: Callable, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *extra]})
    await send({"type": "http.response.body", "body": body})


def check_login(config: ServerConfig, secret: bytes, token: Any) -> str | None:
    """The session cookie value for a correct token, else None."""
    if not config.token or not isinstance(token, str):
        return None
    if hmac.compare_digest(token.encode(), config.token.encode()):
        return session_value(secret, config.token)
    return None
