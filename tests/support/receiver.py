"""A callback receiver on 127.0.0.1 that records what it gets and answers as a test scripts it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.support.live_server import live_server


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: str  # what the receiver did: "ok", "fail" or "timeout"


@dataclass
class Receiver:
    """Answers in the order of `script` ("fail" → 500, "timeout" → stall, "ok" → 200), then "ok"."""

    script: list[str] = field(default_factory=list)
    stall_seconds: float = 3.0
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        with self._lock:
            action = self.script.pop(0) if self.script else "ok"
            self.received.append(
                Received(
                    path=scope["path"],
                    headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
                    body=body,
                    at=time.time(),
                    answered=action,
                )
            )
        if action == "timeout":
            await asyncio.sleep(self.stall_seconds)
        status = 500 if action == "fail" else 200
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    def delivered(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.answered == "ok"]

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        """Wait until `count` requests were answered 2xx; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.delivered()
            if len(done) >= count:
                return done
            time.sleep(0.05)
        raise AssertionError(f"only {len(self.delivered())} of {count} callbacks delivered: {self.received}")


@contextmanager
def running_receiver(
    script: list[str] | None = None, stall_seconds: float = 3.0, port: int = 0
) -> Iterator[Receiver]:
    receiver = Receiver(script=list(script or []), stall_seconds=stall_seconds)
    with live_server(receiver, port=port) as url:
        receiver.url = url
        yield receiver
