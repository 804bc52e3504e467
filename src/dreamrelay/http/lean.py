"""The hottest requests as raw ASGI, in front of the middleware stack and FastAPI.

`GET /healthz`, the own-format batch query (`POST /luma/tasks` with exactly `{"ids": [...]}`), the
gets of one task (`GET /luma/generations/{id}`, `GET /dream-machine/v1/generations/{id}`,
`GET /agents/v1/generations/{id}`, `GET /v1/videos/{id}`) and the own-format submit
(`POST /luma/generations`) are answered here without routing, a Request object or dependency
injection. They go through the very same functions as the framework's routes (authentication, the
one rate-limit check, the parsing and validation of a submit, the services, the store and body cache,
the encoders, the error bodies, the metrics and request ids), so the answers are byte for byte the
framework's (tests/integration/test_lean_reads.py runs both).

Anything unusual goes to the framework untouched, decided before anything is spent: other methods,
a query string, an Origin header (CORS), ids that are not canonical task ids, bodies without a
Content-Length or over the limit. A body is read only after its key is authenticated (a key-cache hit
on the hot path, no database round trip), so a stranger's body is never waited for (issue 26 item 6).
Batch bodies that are not exactly `{"ids": [str, ...]}` (≤ 1000) go on to the framework after that
authentication and before the rate limit, which the framework's route then takes once. A submit's
body is judged after authentication and the rate limit, as the framework's route does: its errors
are the route's errors. A client that hangs up mid-body ends its request with one quiet log line.
"""

from __future__ import annotations

import re
import time
from contextvars import Token

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dreamrelay import metrics
from dreamrelay.domain.errors import DreamRelayError
from dreamrelay.domain.ids import ascii_int
from dreamrelay.formats.agents import API_VERSION as AGENTS_API_VERSION
from dreamrelay.formats.families import AGENTS, LUMA, OFFICIAL, VIDEOS
from dreamrelay.http import errors
from dreamrelay.http.middleware import NO_ORIGIN_VARY, request_id_for
from dreamrelay.http.routes import luma
from dreamrelay.logs import request_id
from dreamrelay.runtime import Runtime
from dreamrelay.services import limits, reads, videos
from dreamrelay.services.auth import authenticate

_TASK_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Module-level strings built once from the families' prefixes (formats/families.py): no per-request work.
_OWN_GET = f"{LUMA.prefix}/generations/"
_OFFICIAL_GET = f"{OFFICIAL.prefix}/generations/"
_AGENTS_GET = f"{AGENTS.prefix}/generations/"
_VIDEOS_GET = f"{VIDEOS.prefix}/"
_POLL_HINT = b"openai-poll-after-ms"
_AGENTS_HEADER = (b"x-api-version", AGENTS_API_VERSION.encode())
_HEALTH_BODY = b'{"status":"ok"}'
_JSON = (b"content-type", b"application/json")
_HEALTH_HEADERS = ((b"content-length", str(len(_HEALTH_BODY)).encode()), _JSON)
_ONLY_STR = {str}
_HEADER_NAMES = {
    name: name.lower().encode()
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After")
}

# The route templates the framework's metrics use for these routes.
HEALTH_ROUTE = "/healthz"
BATCH_ROUTE = f"{LUMA.prefix}/tasks"
OWN_GET_ROUTE = _OWN_GET + "{task_id}"
OFFICIAL_GET_ROUTE = _OFFICIAL_GET + "{generation_id}"
AGENTS_GET_ROUTE = _AGENTS_GET + "{generation_id}"
VIDEOS_GET_ROUTE = _VIDEOS_GET + "{video_id}"
OWN_SUBMIT_ROUTE = f"{LUMA.prefix}/generations"
_WITH_BODY = (BATCH_ROUTE, OWN_SUBMIT_ROUTE)

Ids = tuple[str, ...]


class _Fallthrough(Exception):
    """Not a request this path answers: hand it (and any body already read) to the framework."""


class LeanPaths:
    def __init__(self, app: ASGIApp, rt: Runtime, max_body_bytes: int) -> None:
        self.app = app
        self.rt = rt
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        route: str | None = None
        task_id = ""
        if method == "GET":
            if path == HEALTH_ROUTE:
                route = HEALTH_ROUTE
            elif path.startswith(_OWN_GET):
                task_id = path[len(_OWN_GET) :]
                route = OWN_GET_ROUTE if _TASK_ID.fullmatch(task_id) else None
            elif path.startswith(_OFFICIAL_GET):
                task_id = path[len(_OFFICIAL_GET) :]
                route = OFFICIAL_GET_ROUTE if _TASK_ID.fullmatch(task_id) else None
            elif path.startswith(_AGENTS_GET):
                task_id = path[len(_AGENTS_GET) :]
                route = AGENTS_GET_ROUTE if _TASK_ID.fullmatch(task_id) else None
            elif path.startswith(_VIDEOS_GET):
                task_id = path[len(_VIDEOS_GET) :]
                route = VIDEOS_GET_ROUTE if _TASK_ID.fullmatch(task_id) else None
        elif method == "POST" and path in _WITH_BODY:
            route = path
        if route is None:
            await self.app(scope, receive, send)
            return

        authorization: str | None = None
        idempotency_key: str | None = None
        given_id = ""
        length = -1
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"x-request-id":
                if not given_id:
                    given_id = value.decode("latin-1")
            elif name == b"idempotency-key":
                if idempotency_key is None:
                    idempotency_key = value.decode("latin-1")
            elif name == b"content-length":
                if length < 0:
                    declared = ascii_int(value.decode("latin-1"))
                    length = self.max_body_bytes + 1 if declared is None else declared
            elif name == b"origin":  # CORS: the framework's middleware answers it
                await self.app(scope, receive, send)
                return

        if route in _WITH_BODY and not 0 <= length <= self.max_body_bytes:
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        rid = request_id_for(given_id)
        token: Token[str] | None = request_id.set(rid)
        status, code = 500, "internal_error"
        read: list[Message] = []
        try:
            status, code, headers, body = await self._answer(
                route, task_id, receive, read, authorization, idempotency_key, method, path
            )
            headers.append(NO_ORIGIN_VARY)
            headers.append((b"x-request-id", rid.encode("latin-1")))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        except _Fallthrough:  # a batch body this path does not answer: the framework's, body and all
            route = ""
            if token is not None:
                request_id.reset(token)
                token = None
            await self.app(scope, _replay(read, receive), send)
        except ClientDisconnect:  # mid-body: nothing was done; one quiet line
            status, code = errors.CLIENT_CLOSED, "client_closed"
            errors.hung_up(method, path)
        finally:
            if token is not None:
                request_id.reset(token)
            if route:
                metrics.observe_request(method, route, status, time.perf_counter() - started)
                if route == OWN_SUBMIT_ROUTE:
                    metrics.SUBMITS.labels(luma.FORMAT, code).inc()

    async def _answer(
        self,
        route: str,
        task_id: str,
        receive: Receive,
        read: list[Message],
        authorization: str | None,
        idempotency_key: str | None,
        method: str,
        path: str,
    ) -> tuple[int, str, list[tuple[bytes, bytes]], bytes]:
        """The status, the outcome counted for a submit ("ok" or the error's code), headers and body.

        A body is read only once the key is known good (from the key cache: no database round trip
        on the hot path), so an anonymous or unknown caller's body is never waited for. A batch body
        is read before its rate-limit check: one that falls through (`_Fallthrough`, every message
        read kept in `read`) is checked by the framework's route, once."""
        rt = self.rt
        shown: dict[str, str] | None = None
        code = "ok"
        poll_after: int | None = None
        if route == HEALTH_ROUTE:
            return 200, code, list(_HEALTH_HEADERS), _HEALTH_BODY
        try:
            caller = await authenticate(rt, authorization)
            ids: Ids = ()
            if route == BATCH_ROUTE:
                ids = _batch_ids(await _read_body(receive, read))
            try:
                shown = await limits.admit(rt, caller, batch=route == BATCH_ROUTE)
            except DreamRelayError as exc:
                shown = exc.headers
                raise
            if route == BATCH_ROUTE:
                body = await reads.batch_answer(rt, caller, ids)
            elif route == OWN_SUBMIT_ROUTE:
                raw = await _read_body(receive, read)
                body = (await luma.generated(rt, caller, raw, idempotency_key)).body
            elif route == OWN_GET_ROUTE:
                body = await reads.get_body(rt, caller, task_id)
            elif route == OFFICIAL_GET_ROUTE:
                body = await reads.get_official_body(rt, caller, task_id)
            elif route == VIDEOS_GET_ROUTE:
                body, poll_after = await videos.get_video(rt, caller, task_id)
            else:
                body = await reads.get_agents_body(rt, caller, task_id)
            status = 200
            headers = [(b"content-length", str(len(body)).encode()), _JSON]
            if route == AGENTS_GET_ROUTE:
                headers.insert(0, _AGENTS_HEADER)
            elif poll_after is not None:
                headers.insert(0, (_POLL_HINT, str(poll_after).encode()))
        except DreamRelayError as error:
            status, body, headers = _error(method, path, error)
            code = error.code
        except (_Fallthrough, ClientDisconnect):
            raise
        except Exception as exc:  # the framework's last resort answers the same
            crash = errors.unexpected(method, path, exc)
            status, body, headers = _error(method, path, crash)
            code = crash.code
        if shown:
            # An answer's own headers win over the limit's (an error may carry Retry-After itself).
            present = {name for name, _ in headers} if status != 200 else ()
            for name, value in shown.items():
                key = _HEADER_NAMES.get(name) or name.lower().encode("latin-1")
                if key not in present:
                    headers.append((key, value.encode("latin-1")))
        return status, code, headers, body


def _error(method: str, path: str, error: DreamRelayError) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    body, given = errors.encode(method, path, error)
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in given.items()]
    headers += [(b"content-length", str(len(body)).encode()), _JSON]
    return error.status, body, headers


async def _read_body(receive: Receive, read: list[Message]) -> bytes:
    """The whole request body; every message read is kept in `read` for a fall-through. A client that
    hangs up before its end raises ClientDisconnect."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# The ids of the batch bodies seen last, by the body's bytes: a client polling the same ids sends the
# same bytes, and the same tuple of the same strings makes the body cache's lookup of its joined answer
# an identity check. Small bodies only (whitespace can make a valid body large), and a few of them.
_RECENT_BATCHES: dict[bytes, Ids] = {}
_RECENT_MAX = 256
_RECENT_BODY_BYTES = 64 * 1024


def _batch_ids(raw: bytes) -> Ids:
    """The ids of exactly `{"ids": [str, ...]}` within the batch limit; anything else falls through."""
    known = _RECENT_BATCHES.get(raw)
    if known is not None:
        return known
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _Fallthrough from None
    if type(payload) is not dict or len(payload) != 1:
        raise _Fallthrough
    ids = payload.get("ids")
    if type(ids) is not list or len(ids) > reads.BATCH_MAX_IDS:
        raise _Fallthrough
    if ids and set(map(type, ids)) != _ONLY_STR:  # every id a str (one pass in C)
        raise _Fallthrough
    parsed = tuple(ids)
    if len(raw) <= _RECENT_BODY_BYTES:
        if len(_RECENT_BATCHES) >= _RECENT_MAX:
            _RECENT_BATCHES.clear()
        _RECENT_BATCHES[raw] = parsed
    return parsed


def _replay(read: list[Message], receive: Receive) -> Receive:
    """A receive that gives back the messages already read, then the connection's own."""
    pending = list(read)

    async def again() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return again
