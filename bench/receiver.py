"""A healthy callback receiver: answers 204 to every POST at once and notes when each arrived.

GET /__bench/arrivals returns [[unix time, path, task id, sequence], …] in arrival order;
POST /__bench/reset forgets them. The time is taken when the whole body has been read, on the same
clock (time.time) DreamRelay writes into its outbox rows.

Run as `python -m bench.receiver --port N`.
"""

from __future__ import annotations

import argparse
import time

from aiohttp import web


def build_app() -> web.Application:
    arrivals: list[tuple[float, str, str, str]] = []
    app = web.Application(client_max_size=16 * 1024 * 1024)

    async def receive(request: web.Request) -> web.Response:
        await request.read()
        arrivals.append(
            (
                time.time(),
                request.path,
                request.headers.get("DreamRelay-Task-Id", ""),
                request.headers.get("DreamRelay-Sequence", ""),
            )
        )
        return web.Response(status=204)

    async def list_arrivals(request: web.Request) -> web.Response:
        return web.json_response(arrivals)

    async def reset(request: web.Request) -> web.Response:
        arrivals.clear()
        return web.json_response({})

    app.router.add_get("/__bench/arrivals", list_arrivals)
    app.router.add_post("/__bench/reset", reset)
    app.router.add_post("/{tail:.*}", receive)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(build_app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
