"""Stand-in upstreams for routing tests: a scripted own-format relay, a counting proxy, a resetting socket."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from dreamrelay.sandbox.render import RenderSpec, dimensions, frame_count, render_video
from tests.support.live_server import live_server


def small_video(path: Path) -> bytes:
    width, height = dimensions("540p", "16:9")
    render_video(RenderSpec("fake relay video", width, height, frame_count("5s")), path)
    return path.read_bytes()


async def _read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


async def _answer(send: Any, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if status == 429:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return


@dataclass
class FakeRelay:
    """An own-format relay that misbehaves as `mode` says:

    ok (completes at the first poll), 429 and 500 (at submit), slow (answers after `slow_seconds`),
    badjson (200 with HTML), lose (accepts, then never knows the id), poll429 (429 on the first
    `poll_429s` batch queries, then completed).
    """

    mode: str
    video: bytes
    slow_seconds: float = 3.0
    poll_429s: int = 3
    video_origin: str | None = None  # where its video URLs point (default: its own origin)
    media_gate: threading.Event | None = None  # when given, GET /v.mp4 is held until it is set
    requests: list[tuple[str, str]] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r == (method, path))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        method, path = scope["method"], scope["path"]
        body = await _read_body(receive)
        self.requests.append((method, path))
        host = dict(scope["headers"]).get(b"host", b"").decode()
        if method == "GET" and path == "/v.mp4":
            while self.media_gate is not None and not self.media_gate.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # set by the test's thread
            await _answer(send, 200, self.video, b"video/mp4")
            return
        if method == "POST" and path.startswith("/luma/generations"):
            self.bodies.append(orjson.loads(body))
            await self._submit(send)
            return
        if method == "POST" and path == "/luma/tasks":
            ids = orjson.loads(body)["ids"]
            await self._poll(send, ids, f"{self.video_origin or f'http://{host}'}/v.mp4")
            return
        await _answer(send, 404, b'{"error": {"message": "not found"}}')

    async def _submit(self, send: Any) -> None:
        if self.mode in ("429", "500"):
            await _answer(send, int(self.mode), b'{"error": {"message": "scripted failure"}}')
            return
        if self.mode == "slow":
            await asyncio.sleep(self.slow_seconds)
        if self.mode == "badjson":
            await _answer(send, 200, b"<html>gateway says hi</html>", b"text/html")
            return
        await _answer(send, 200, orjson.dumps({"id": str(uuid.uuid4()), "state": "pending"}))

    async def _poll(self, send: Any, ids: list[str], video_url: str) -> None:
        polls = self.count("POST", "/luma/tasks")
        if self.mode == "poll429" and polls <= self.poll_429s:
            await _answer(send, 429, b'{"error": {"message": "slow down"}}')
            return
        if self.mode == "lose":
            await _answer(send, 200, b"[]")
            return
        items = [
            {"id": i, "state": "completed", "video": {"url": video_url, "download_url": video_url}}
            for i in ids
        ]
        # The new-api envelope, which relays of that family answer with.
        await _answer(send, 200, orjson.dumps({"code": "success", "message": "", "data": items}))


@contextmanager
def running(app: Any) -> Iterator[str]:
    with live_server(app) as url:
        yield url


@dataclass
class CountingProxy:
    """Forwards every request to `target` and counts them by (method, path)."""

    target: str
    requests: list[tuple[str, str]] = field(default_factory=list)
    client: httpx.AsyncClient | None = None

    def count(self, method: str, path_prefix: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.startswith(path_prefix))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        body = await _read_body(receive)
        self.requests.append((scope["method"], scope["path"]))
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=60)
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k.lower() != b"host"}
        url = (
            self.target
            + scope["path"]
            + ("?" + scope["query_string"].decode() if scope["query_string"] else "")
        )
        answer = await self.client.request(scope["method"], url, content=body, headers=headers)
        await _answer(
            send, answer.status_code, answer.content, answer.headers.get("content-type", "").encode()
        )


@contextmanager
def resetting_server() -> Iterator[str]:
    """Accepts a connection, reads the request, then resets it (RST) without answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
