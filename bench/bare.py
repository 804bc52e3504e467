"""The physical-limit baseline: a raw ASGI callable (no framework) that reads the whole request and
answers the bytes DreamRelay answered for that same request, on the uvicorn settings `dreamrelay
serve` uses (uvicorn.run, default loop and HTTP implementation, access log off, one process).

Run as `python -m bench.bare --port N --routes routes.json [--workers N]`; routes.json is a list of
{"method", "path", "body_b64" (null: any body), "response_b64"}. With `--workers N` it runs the way
`dreamrelay serve --workers N` does (uvicorn's process manager, an app factory in each process): the
baseline of the many-processes comparison.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvicorn

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HEALTH = b'{"status":"ok"}'
ROUTES_ENV = "BENCH_BARE_ROUTES"  # how each process of `--workers N` finds the routes file


class BareApp:
    def __init__(self, routes: list[dict[str, Any]]) -> None:
        self.exact: dict[tuple[str, str, bytes], bytes] = {}
        self.any_body: dict[tuple[str, str], bytes] = {("GET", "/healthz"): HEALTH}
        for route in routes:
            response = base64.b64decode(route["response_b64"])
            if route.get("body_b64") is None:
                self.any_body[(route["method"], route["path"])] = response
            else:
                self.exact[(route["method"], route["path"], base64.b64decode(route["body_b64"]))] = response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        method, path = scope["method"], scope["path"]
        answer = self.exact.get((method, path, body))
        if answer is None:
            answer = self.any_body.get((method, path))
        status = 200 if answer is not None else 404
        payload = answer if answer is not None else b'{"error":"not a benchmark route"}'
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def create_from_env() -> BareApp:
    """The factory each process of `--workers N` calls."""
    return BareApp(json.loads(Path(os.environ[ROUTES_ENV]).read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--routes", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # The same call as dreamrelay.cli.serve, so loop, HTTP parser and logging match.
    common: dict[str, Any] = {"host": args.host, "port": args.port, "log_level": "info", "access_log": False}
    if args.workers == 1:
        uvicorn.run(BareApp(json.loads(args.routes.read_text())), **common)
        return
    os.environ[ROUTES_ENV] = str(args.routes.resolve())
    uvicorn.run("bench.bare:create_from_env", factory=True, workers=args.workers, **common)


if __name__ == "__main__":
    main()
