"""The HTTP/1.1 connection guard of `dreamrelay serve`: bounded header and body time, header size and
connections.

uvicorn arms no timer on a fresh connection, and the keep-alive timer stops as soon as a byte arrives,
so a client that trickles its request headers or its body (or never finishes them) holds a socket
forever. This protocol (uvicorn's httptools protocol, plus four rules) closes:
- a connection whose request headers are not complete `header_seconds` after it opened or after its
  previous request ended;
- a connection whose unfinished headers pass `max_header_bytes` (431, then closed);
- a connection whose request body, still arriving, brought less than `body_min_rate` bytes a second
  over the last `body_seconds`, or is not complete `body_deadline_seconds` after its headers (408 in
  the route family's error shape if no answer has started, then closed; the application's pending
  read sees the client gone). Time the relay itself is not reading (uvicorn's flow control paused the
  socket) is not held against the client. A body that arrives with its headers arms nothing. A body
  still arriving when its answer has gone out (a refusal that did not read it) may go on for
  `LINGER_SECONDS`, then the connection is closed;
- a new connection beyond `max_connections` open at once (closed at once, before reading anything).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from dreamrelay.domain.errors import RequestTimeout
from dreamrelay.http import errors
from dreamrelay.services import waiting

if TYPE_CHECKING:
    from dreamrelay.settings import Settings

log = logging.getLogger(__name__)


# After an answer sent before its request body ended, the rest of the body may come this long
# (read and dropped, so the client can read the answer), then the connection is closed.
LINGER_SECONDS = 2.0


@dataclass(frozen=True)
class ConnectionLimits:
    header_seconds: float = 10.0
    max_header_bytes: int = 64 * 1024
    max_connections: int = 1000  # 0: no cap
    body_seconds: float = 10.0
    body_min_rate: int = 1024  # bytes a second, over each span of body_seconds
    body_deadline_seconds: float = 600.0

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            header_seconds=settings.header_timeout_seconds,
            max_connections=settings.max_connections,
            body_seconds=settings.body_timeout_seconds,
            body_min_rate=settings.body_min_rate,
            body_deadline_seconds=settings.body_deadline_seconds,
        )


_TOO_LARGE_BODY = (
    b'{"error": {"message": "request headers are too large", "type": "invalid_request_error", '
    b'"code": "headers_too_large"}}'
)
HEADERS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(_TOO_LARGE_BODY)
    + _TOO_LARGE_BODY
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    _last_warned = 0.0
    _last_slow_warned = 0.0

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        # One timer per connection, re-armed only when it fires early: a keep-alive connection's
        # requests arm and cancel nothing (the bound is kept by `_headers_due`).
        self._header_timer: asyncio.TimerHandle | None = None
        self._headers_due = 0.0
        self._header_bytes = 0
        self._awaiting_headers = False
        # The request body: arriving from headers complete until message complete.
        self._in_body = False
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_started = 0.0
        self._body_bytes = 0  # received in the current span

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        cap = self.limits.max_connections
        if cap and len(self.connections) > cap:
            now = time.monotonic()
            if now - GuardedHttpToolsProtocol._last_warned >= 10:  # one line per 10 s under a flood
                GuardedHttpToolsProtocol._last_warned = now
                log.warning("refusing connections: %d are open (DREAMRELAY_MAX_CONNECTIONS)", cap)
            transport.abort()
            return
        self._await_headers()

    def shutdown(self) -> None:
        # The server is stopping: synchronous waits answer now (their task as it stands), so their
        # connections close at once instead of being cancelled after the grace period.
        waiting.end_all()
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        self._stop_body_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        awaiting = self._awaiting_headers
        super().data_received(data)  # may complete the headers (and carry the body's first bytes)
        if awaiting and self._awaiting_headers and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                self._stop_header_timer()
                self._awaiting_headers = False
                self.transport.write(HEADERS_TOO_LARGE)
                self.transport.close()
        elif self._in_body and self._body_timer is None and not self.transport.is_closing():
            # A body still to come after this read (the usual small body came whole: nothing armed).
            due = self._body_started + self.limits.body_seconds
            self._body_timer = self.loop.call_at(due, self._body_check)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._in_body = True  # until on_message_complete, called at once for a request without a body
        self._body_started = self.loop.time()
        self._body_bytes = 0
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._stop_body_timer()
        super().on_message_complete()
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and not self.transport.is_closing():
            self._await_headers()  # answered before its body ended: the next request's headers now

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self._in_body:
            # Answered before its body ended (a refusal): the rest is read and dropped, for a short
            # while only, then the connection is closed (a stranger's trickle holds nothing).
            self._stop_body_timer()
            self._body_timer = self.loop.call_later(LINGER_SECONDS, self._linger_over)
        else:
            self._await_headers()

    def _linger_over(self) -> None:
        self._body_timer = None
        if self._in_body and not self.transport.is_closing():
            self._in_body = False
            self.transport.close()

    def _await_headers(self) -> None:
        self._awaiting_headers = True
        self._header_bytes = 0
        self._headers_due = self.loop.time() + self.limits.header_seconds
        if self._header_timer is None:
            self._header_timer = self.loop.call_at(self._headers_due, self._headers_overdue)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_overdue(self) -> None:
        self._header_timer = None
        if not self._awaiting_headers or self.transport.is_closing():
            return  # headers arrived in time (the next wait arms the timer again)
        if self.loop.time() < self._headers_due:  # a later wait: its own full time is left
            self._header_timer = self.loop.call_at(self._headers_due, self._headers_overdue)
            return
        self.transport.close()

    def _stop_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_check(self) -> None:
        self._body_timer = None
        if not self._in_body or self.transport.is_closing():
            return
        limits = self.limits
        now = self.loop.time()
        if now - self._body_started >= limits.body_deadline_seconds:
            self._body_too_slow(f"was not complete within {limits.body_deadline_seconds:g} s")
            return
        needed = max(1.0, limits.body_min_rate * limits.body_seconds)  # a stall is too slow at any rate
        if self._body_bytes < needed and not self.flow.read_paused:
            self._body_too_slow(
                f"brought {self._body_bytes} bytes in {limits.body_seconds:g} s "
                f"(at least {limits.body_min_rate} a second are needed)"
            )
            return
        self._body_bytes = 0
        due = min(now + limits.body_seconds, self._body_started + limits.body_deadline_seconds)
        self._body_timer = self.loop.call_at(due, self._body_check)

    def _body_too_slow(self, why: str) -> None:
        self._in_body = False
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            scope = cycle.scope
            error = RequestTimeout(f"the request body {why}; the connection is closed")
            body, headers = errors.encode(scope["method"], scope["path"], error)
            head = ["HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"]
            head += [f"{name}: {value}\r\n" for name, value in headers.items()]
            head.append(f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
            self.transport.write("".join(head).encode("latin-1") + body)
        now = time.monotonic()
        if now - GuardedHttpToolsProtocol._last_slow_warned >= 10:  # one line per 10 s under a flood
            GuardedHttpToolsProtocol._last_slow_warned = now
            log.warning("closed a connection from %s: its request body %s", _peer(self.client), why)
        self.transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return client[0] if client else "an unknown address"


def guarded_protocol(limits: ConnectionLimits) -> Any:
    """What `uvicorn.Config(http=…)` takes: a factory of the guarded protocol (picklable for --workers)."""
    return functools.partial(GuardedHttpToolsProtocol, limits=limits)
