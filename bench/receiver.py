"""A healthy callback receiver: answers 204 to every POST at once and notes when each arrived.

GET /__bench/arrivals returns [[unix time, path, task id, sequence], …] in arrival order;
POST /__bench/reset forgets them. The time is taken when the whole body has been read, on the same
clock (time.time) DreamRelay writes into its outbox rows.

It is a bare HTTP/1.1 protocol (httptools on uvloop, keep-alive, no framework) so that the receiver
is not what limits a deliveries-per-second figure: the deliverer and the plain client it is compared
with both post to it, and both should be limited by their own cost.

Run as `python -m bench.receiver --port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httptools
import uvloop

Arrival = tuple[float, str, str, str]

_NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


def _json(body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


class _Connection(asyncio.Protocol):
    """One keep-alive connection; requests are answered in order, each as soon as its body is in."""

    def __init__(self, arrivals: list[Arrival]) -> None:
        self.arrivals = arrivals
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self.url = b""
        self.task_id = b""
        self.sequence = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url, self.task_id, self.sequence = b"", b"", b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"dreamrelay-task-id":
            self.task_id = value
        elif lowered == b"dreamrelay-sequence":
            self.sequence = value

    def on_message_complete(self) -> None:
        path = self.url.split(b"?", 1)[0].decode()
        method = self.parser.get_method()
        if path == "/__bench/arrivals":
            self.transport.write(_json(json.dumps(self.arrivals).encode()))
        elif path == "/__bench/reset" and method == b"POST":
            self.arrivals.clear()
            self.transport.write(_json(b"{}"))
        else:
            self.arrivals.append((time.time(), path, self.task_id.decode(), self.sequence.decode()))
            self.transport.write(_NO_CONTENT)


async def serve(host: str, port: int) -> None:
    arrivals: list[Arrival] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(arrivals), host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
