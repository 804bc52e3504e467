"""A misbehaving own-format upstream for fault 4, and a TCP proxy that resets connections on demand."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.support.upstreams import _lifespan, _read_body

NO_VIDEO = "[up:novideo]"  # prompts with it finish upstream without a video
SLOW_SUBMIT = "[up:slowsubmit]"  # prompts with it are answered after the relay's upstream timeout


@dataclass
class Faulty:
    """An own-format relay answering as its scripts say, then normally. Submit script steps: "500";
    poll script steps (one per batch query): "500", "garbage" (200 with HTML), "slow" (after
    `slow_seconds`), "running", "reset" (the proxy's job, skipped here). Every answer closes its
    connection, so the proxy in front sees each request on a connection of its own."""

    video: bytes
    slow_seconds: float = 3.0
    submit_script: list[str] = field(default_factory=list)
    poll_script: list[str] = field(default_factory=list)
    submits: int = 0
    polls: int = 0
    no_video: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _next(self, script: list[str]) -> str:
        with self._lock:
            return script.pop(0) if script else "ok"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        method, path = scope["method"], scope["path"]
        body = await _read_body(receive)
        host = dict(scope["headers"]).get(b"host", b"").decode()
        if method == "GET" and path == "/v.mp4":
            await _close(send, 200, self.video, b"video/mp4")
        elif method == "POST" and path == "/luma/generations":
            self.submits += 1
            await self._submit(send, orjson.loads(body))
        elif method == "POST" and path == "/luma/tasks":
            self.polls += 1
            await self._poll(send, orjson.loads(body)["ids"], f"http://{host}/v.mp4")
        else:
            await _close(send, 404, b'{"error": {"message": "not found"}}')

    async def _submit(self, send: Any, body: dict[str, Any]) -> None:
        prompt = str(body.get("user_prompt") or "")
        if self._next(self.submit_script) == "500":
            await _close(send, 500, b'{"error": {"message": "scripted failure"}}')
            return
        if SLOW_SUBMIT in prompt:
            await asyncio.sleep(self.slow_seconds)
        generation = str(uuid.uuid4())
        if NO_VIDEO in prompt:
            self.no_video.add(generation)
        await _close(send, 200, orjson.dumps({"id": generation, "state": "pending"}))

    async def _poll(self, send: Any, ids: list[str], video_url: str) -> None:
        step = self._next(self.poll_script)
        if step == "500":
            await _close(send, 502, b"<html>bad gateway</html>", b"text/html")
            return
        if step == "garbage":
            await _close(send, 200, b'{"data": [{"id": "', b"application/json")
            return
        if step == "slow":
            await asyncio.sleep(self.slow_seconds)
        running = step == "running"
        items = [
            {"id": i, "state": "dreaming"}
            if running
            else {"id": i, "state": "completed"}
            if i in self.no_video
            else {"id": i, "state": "completed", "video": {"url": video_url}}
            for i in ids
        ]
        await _close(send, 200, orjson.dumps(items))


async def _close(send: Any, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class ResettingProxy:
    """Pipes TCP connections to `target_port`; while `resets` > 0, one connection's request is read and
    the connection reset (RST, no answer) instead, and `resets` goes down by one."""

    target_port: int
    resets: int = 0
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _take_reset(self) -> bool:
        with self._lock:
            if self.resets > 0:
                self.resets -= 1
                return True
            return False

    def handle(self, conn: socket.socket) -> None:
        if self._take_reset():
            conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.target_port))

        def pipe(source: socket.socket, target: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    target.sendall(data)
            except OSError:
                pass
            finally:
                for end in (source, target):
                    with contextlib.suppress(OSError):
                        end.shutdown(socket.SHUT_RDWR)

        back = threading.Thread(target=pipe, args=(upstream, conn), daemon=True)
        back.start()
        pipe(conn, upstream)
        back.join(timeout=30)
        conn.close()
        upstream.close()


@contextmanager
def resetting_proxy(target_url: str) -> Iterator[ResettingProxy]:
    proxy = ResettingProxy(int(target_url.rsplit(":", 1)[1]))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    proxy.port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            threading.Thread(target=proxy.handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
