"""The HTTP/1.1 connection guard of `dreamrelay serve`: bounded header time and size, bounded connections.

uvicorn arms no timer on a fresh connection, and the keep-alive timer stops as soon as a byte arrives,
so a client that trickles its request headers (or never finishes them) holds a socket forever. This
protocol (uvicorn's httptools protocol, plus three rules) closes:
- a connection whose request headers are not complete `header_seconds` after it opened or after its
  previous response ended;
- a connection whose unfinished headers pass `max_header_bytes` (431, then closed);
- a new connection beyond `max_connections` open at once (closed at once, before reading anything).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    header_seconds: float = 10.0
    max_header_bytes: int = 64 * 1024
    max_connections: int = 1000  # 0: no cap


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

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        # One timer per connection, re-armed only when it fires early: a keep-alive connection's
        # requests arm and cancel nothing (the bound is kept by `_headers_due`).
        self._header_timer: asyncio.TimerHandle | None = None
        self._headers_due = 0.0
        self._header_bytes = 0
        self._awaiting_headers = False

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

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
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

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_headers()

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


def guarded_protocol(limits: ConnectionLimits) -> Any:
    """What `uvicorn.Config(http=…)` takes: a factory of the guarded protocol (picklable for --workers)."""
    return functools.partial(GuardedHttpToolsProtocol, limits=limits)
