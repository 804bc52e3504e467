"""Pure ASGI middleware: trailing slashes, request ids, metrics, body limit, CORS on client routes only."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dreamrelay import metrics
from dreamrelay.domain.errors import InvalidRequest, NotFound, PayloadTooLarge
from dreamrelay.domain.ids import ascii_int, has_control
from dreamrelay.http.errors import ERROR_CODE, render
from dreamrelay.logs import request_id

# Compatibility prefixes some relays document for the own format (luma-api.md §1 row 9).
PATH_ALIASES = (("/luma/v1/", "/luma/"), ("/luma/V1/", "/luma/"))


def canonical_path(path: str) -> str:
    """`/x/` → `/x`; `/luma/v1/…` and `/luma/V1/…` → `/luma/…`."""
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    for alias, canonical in PATH_ALIASES:
        if path.startswith(alias):
            return canonical + path.removeprefix(alias)
    return path


class HTTPOnly:
    """A pure-ASGI middleware for HTTP requests: anything else (lifespan, websockets) passes through.

    A subclass writes `http(scope, receive, send)`; `self.app` is the application it wraps.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class TrailingSlash:
    """Serves `/x/` exactly as `/x` (and the compatibility paths `/luma/v1/…` as `/luma/…`): rewrites
    the path before anything routes it.

    Clients such as Dooy's web client and 99AI post to `/luma/generations/`; answering them directly
    (instead of a 307 to the slash-less URL) saves a request per call. This is the OUTERMOST layer of
    the app (added last in `http/app.py`), so every route, middleware and raw-ASGI fast path behind it
    sees only canonical paths and needs no variant of its own. The query string is untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] in ("http", "websocket"):
            canonical = canonical_path(path)
            if canonical != path:
                scope = dict(scope)
                scope["path"] = canonical
                raw: bytes | None = scope.get("raw_path")
                if raw is not None:  # the same rewrite on the still percent-encoded bytes
                    scope["raw_path"] = canonical_path(raw.decode("latin-1")).encode("latin-1")
        await self.app(scope, receive, send)


# A generator of our own, not the random module's: drawing from the shared one (from a server thread,
# say) moves the state every other user of `random` sees; Hypothesis, in the tests, fails on that.
# Reseeded in a forked child as the module's is, so processes never share a sequence.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)


def request_id_for(given: str) -> str:
    """The caller's X-Request-Id if it is sane, else a new one: 32 lowercase hex digits (128 random bits,
    as unique as a UUID4's 122, without its system call and object)."""
    return given if 0 < len(given) <= 64 and given.isprintable() else f"{_ids.getrandbits(128):032x}"


class RequestId(HTTPOnly):
    """Takes X-Request-Id from the caller (if sane) or makes one; echoes it and exposes it to logs.

    It also answers what nothing expected (the 500): Starlette's own last resort sits outside every
    middleware, where the id is gone, so its answer said "request id -" and its log line had none. Here
    the answer, its header and the logged traceback carry the same id.
    """

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        from dreamrelay.http.errors import crashed, render  # errors imports this module; kept local

        rid = request_id_for(Headers(scope=scope).get("x-request-id", ""))
        token = request_id.set(rid)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-Id"] = rid
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if started:  # too late for an answer: the server closes the connection
                raise
            request = Request(scope)
            await render(request, crashed(request.method, request.url.path, exc))(
                scope, receive, send_with_id
            )
        finally:
            request_id.reset(token)


class ControlCharacters(HTTPOnly):
    """A path with a control character (NUL included) names nothing we serve: 404 in the family's own
    error shape, before any route or store sees it. Such a query string is a 400."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        response: Response
        if has_control(path):
            if path.startswith("/console"):
                response = HTMLResponse("<!doctype html><title>404</title><h1>404 Not Found</h1>", 404)
            else:
                response = render(Request(scope), NotFound("no such resource"))
            await response(scope, receive, send)
            return
        query = unquote_to_bytes(scope.get("query_string", b"").replace(b"+", b" "))
        if any(b < 0x20 or b == 0x7F for b in query):
            response = render(Request(scope), InvalidRequest("the query string holds a control character"))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyLimit(HTTPOnly):
    """Refuse bodies over `max_bytes` while reading them: Content-Length first, then a running count."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length")
        seen = 0
        limit = self.max_bytes

        async def limited_receive() -> Message:
            nonlocal seen
            if declared is not None and (ascii_int(declared) or 0) > limit:
                raise PayloadTooLarge(f"request body is larger than {limit} bytes")
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(f"request body is larger than {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


NO_CORS = ("/admin", "/console")  # same-origin only: the operator's API and the console's cookie routes


# What ClientCORS adds to the answer of a client route asked without an Origin header (starlette's
# CORSMiddleware says the answer varies by Origin); http/lean.py adds the same, tested to match.
NO_ORIGIN_VARY = (b"vary", b"Origin")


class ClientCORS:
    """CORS for the client API (browsers call it directly); never for /admin or the console."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=[
                "X-Request-Id",
                "Retry-After",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
            ],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(NO_CORS):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class RateLimitHeaders(HTTPOnly):
    """Copies the X-RateLimit-* headers the auth dependency left in the request state onto the response."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = scope.get("state", {}).get("ratelimit_headers")
                if extra:
                    headers = MutableHeaders(scope=message)
                    for name, value in extra.items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_limits)


class MediaNoSniff(HTTPOnly):
    """Every answer under /media/ (files, ranges, redirects, errors) says `X-Content-Type-Options:
    nosniff`: a browser takes the stored bytes as the type we name, never as HTML it guessed."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not scope["path"].startswith("/media/"):
            await self.app(scope, receive, send)
            return

        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Content-Type-Options"] = "nosniff"
            await send(message)

        await self.app(scope, receive, send_nosniff)


Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def counts_as_submit(api_format: str) -> Callable[[Endpoint], Endpoint]:
    """Marks a route handler that creates tasks: `Metrics` counts its answers in dreamrelay_submits_total
    by `api_format` and outcome ("ok" or the error code)."""

    def mark(endpoint: Endpoint) -> Endpoint:
        endpoint.submit_format = api_format  # type: ignore[attr-defined]
        return endpoint

    return mark


class Metrics(HTTPOnly):
    """Counts and times every HTTP request by its route template (not its path: ids would explode), and
    the outcome of every submit."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            matched = scope.get("route")
            route = getattr(matched, "path", None) or "unmatched"
            metrics.observe_request(scope["method"], route, status, time.perf_counter() - started)
            api_format = getattr(getattr(matched, "endpoint", None), "submit_format", None)
            if api_format is not None:
                code = "ok" if status < 400 else scope.get("state", {}).get(ERROR_CODE) or str(status)
                metrics.SUBMITS.labels(api_format, code).inc()
