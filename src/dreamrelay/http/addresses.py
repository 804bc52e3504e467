"""At most so many requests in progress at once from one client address (issue 26 item 6).

uvicorn's own `limit_concurrency` and our `max_connections` are for the whole process: one address
could take them all. This cap is per address, counted while a request is in the application (its body
arriving, a synchronous wait, a download): one more from that address is a 429 in the route family's
error shape, sent before any of its body is read, and the connection is closed after it.

The address is the ASGI scope's `client`, which is the forwarded client when trusted proxy headers
are configured (so a reverse proxy's clients are told apart), the peer otherwise. Requests to the
mounted sandbox are not counted: they are the relay's own calls to its built-in upstream, on loopback.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from dreamrelay.domain.errors import RateLimited

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "1"


class TooManyFromAddress(RateLimited):
    code = "too_many_connections"


class PerAddressCap:
    def __init__(self, app: ASGIApp, cap: int, exempt_prefix: str | None = None) -> None:
        self.app = app
        self.cap = cap
        self.exempt_prefix = exempt_prefix
        self.open: dict[str, int] = {}
        self._last_warned = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if (
            not self.cap
            or client is None
            or (self.exempt_prefix is not None and scope["path"].startswith(self.exempt_prefix))
        ):
            await self.app(scope, receive, send)
            return
        address = client[0]
        held = self.open.get(address, 0)
        if held >= self.cap:
            await self._refuse(address, scope, receive, send)
            return
        self.open[address] = held + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self.open[address] - 1
            if left:
                self.open[address] = left
            else:
                del self.open[address]

    async def _refuse(self, address: str, scope: Scope, receive: Receive, send: Send) -> None:
        from dreamrelay.http.errors import render  # errors imports middleware, not this; kept local

        now = time.monotonic()
        if now - self._last_warned >= 10:  # one line per 10 s under a flood
            self._last_warned = now
            log.warning(
                "refusing requests from %s: %d are in progress (DREAMRELAY_MAX_REQUESTS_PER_ADDRESS)",
                address,
                self.cap,
            )
        error = TooManyFromAddress(
            f"too many requests in progress from this address (at most {self.cap} at once); "
            "let some finish first",
            headers={"Retry-After": RETRY_AFTER_SECONDS, "Connection": "close"},
        )
        await render(Request(scope), error)(scope, receive, send)
