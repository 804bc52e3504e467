"""Every error leaves as JSON in the style of its path's API family (formats/families.py):
{"error": {message, type, code}}, or {"detail": ...} on the official and Agents API routes."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from dreamrelay.domain.errors import (
    DatabaseUnavailable,
    DreamRelayError,
    InternalError,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedRoute,
)
from dreamrelay.formats.families import errors_for
from dreamrelay.logs import request_id
from dreamrelay.store.outage import described as described_outage
from dreamrelay.store.outage import is_outage

log = logging.getLogger(__name__)

ERROR_CODE = "error_code"  # set in the request state by `render`: the code the customer got (Metrics)


def encode(method: str, path: str, error: DreamRelayError) -> tuple[bytes, dict[str, str]]:
    """The error's JSON body for `method` `path` (the bytes JSONResponse would write) and the headers
    it goes out with."""
    style = errors_for(path)  # the family of the path's prefix (formats/families.py)
    headers = {**error.headers, **style.headers} if style.headers else error.headers
    body = style.body(shown(method, path, error), error)
    encoded = json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
    return encoded.encode(), headers


def shown(method: str, path: str, error: DreamRelayError) -> str:
    """What a customer reads of `error` (every API family and the console): its message, or for an
    error that involves an upstream our words and the request id; the details (channel, host, the
    upstream's words) go to the log."""
    if error.public is None:
        return error.message
    log.warning("%s on %s %s: %s", error.code, method, path, error.message)
    return f"{error.public} (request id {request_id.get()})"


def render(request: Request, error: DreamRelayError) -> Response:
    setattr(request.state, ERROR_CODE, error.code)  # read by middleware.Metrics (submit outcomes)
    body, headers = encode(request.method, request.url.path, error)
    return Response(body, status_code=error.status, headers=headers, media_type="application/json")


# Pydantic names our schema classes in some sentences ("a valid dictionary or instance of ImageRef").
_INSTANCE_OF = re.compile(r" or instance of \w+")


def described(errors: Sequence[Any], skipped: tuple[str, ...] = ()) -> str:
    """A failed validation as customers read it: each field's path (less the `skipped` parts) and
    pydantic's sentence about it, without our class names; the first five."""
    parts = []
    for err in errors[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in skipped)
        words = _INSTANCE_OF.sub("", str(err.get("msg"))).removeprefix("Value error, ")
        parts.append(f"{where}: {words}" if where else words)
    return "; ".join(parts) or "invalid request"


def validation_message(exc: RequestValidationError) -> str:
    return described(exc.errors(), ("body", "query", "path"))


def crashed(method: str, path: str, exc: Exception) -> InternalError:
    """The answer to an error nothing expected, logged with its traceback for the operator."""
    log.exception("unhandled error on %s %s", method, path, exc_info=exc)
    return InternalError(
        f"internal error (request id {request_id.get()}); the operator's logs have the details"
    )


CLIENT_CLOSED = 499  # what metrics count for a request whose client hung up before its answer (nginx's)


def hung_up(method: str, path: str) -> None:
    """The one quiet line for a client that hung up mid-body or mid-wait (no traceback: not our fault)."""
    log.info("client hung up before the answer to %s %s", method, path)


def unexpected(method: str, path: str, exc: Exception) -> DreamRelayError:
    """The answer to an exception no route turned into one of ours (the one place for every family, the
    lean paths and the framework's): the database being unreachable is a 503 `database_unavailable`,
    logged in one line; anything else is a crash (500, logged with its traceback)."""
    if is_outage(exc):
        log.warning("database unavailable on %s %s: %s", method, path, described_outage(exc))
        return DatabaseUnavailable()
    return crashed(method, path, exc)


# Exceptions a database driver raises: handled inside the framework's exception layer (so an outage
# is answered without Starlette re-raising it to the server, which would log a traceback per request).
DRIVER_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    SQLAlchemyError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    sqlite3.Error,
)


def install(app: FastAPI) -> None:
    async def on_ours(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DreamRelayError)
        return render(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return render(request, InvalidRequest(validation_message(exc)))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        error: DreamRelayError
        if exc.status_code in (404, 405):
            # The router's "no route" and "wrong method" (our routes raise domain errors, never
            # HTTPException): a method and path not served, so never a bare 405. Rendered in the
            # family of the prefix like every other error.
            error = UnsupportedRoute(
                f"{request.method} {request.url.path} is not supported by this relay (DreamRelay); "
                "see /docs for the routes it serves"
            )
        elif exc.status_code == 413:
            error = PayloadTooLarge(str(exc.detail))
        elif exc.status_code < 500:
            error = InvalidRequest(str(exc.detail))
        else:
            error = InternalError("internal error")
        return render(request, error)

    async def on_hang_up(request: Request, exc: Exception) -> Response:
        # Nobody reads this answer; the request's work was never started or is complete.
        hung_up(request.method, request.url.path)
        return Response(status_code=CLIENT_CLOSED)

    async def on_crash(request: Request, exc: Exception) -> Response:
        return render(request, unexpected(request.method, request.url.path, exc))

    app.add_exception_handler(DreamRelayError, on_ours)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(ClientDisconnect, on_hang_up)
    for driver_error in DRIVER_ERRORS:
        app.add_exception_handler(driver_error, on_crash)
    app.add_exception_handler(Exception, on_crash)
