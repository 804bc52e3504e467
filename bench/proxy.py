"""A counting reverse proxy put between DreamRelay and the sandbox upstream.

Every request is forwarded unchanged (Host kept, so the asset URLs the sandbox builds point back at
the proxy and media downloads are counted too) and counted by kind: submit, poll, file, other.
GET /__bench/counts returns the counts; POST /__bench/reset zeroes them.

Run as `python -m bench.proxy --port N --target http://127.0.0.1:M`.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

import aiohttp
from aiohttp import web

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
POLL = re.compile(r"/generations/[0-9a-f-]{36}$")


def kind_of(method: str, path: str) -> str:
    if method == "POST" and path.endswith(("/generations", "/generations/video")):
        return "submit"
    if method == "GET" and POLL.search(path):
        return "poll"
    if method == "GET" and "/files/" in path:
        return "file"
    return "other"


def build_app(target: str) -> web.Application:
    counts: Counter[str] = Counter()
    app = web.Application(client_max_size=64 * 1024 * 1024)

    async def on_startup(app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=512)
        app["session"] = aiohttp.ClientSession(connector=connector, auto_decompress=False)

    async def on_cleanup(app: web.Application) -> None:
        await app["session"].close()

    async def get_counts(request: web.Request) -> web.Response:
        return web.json_response(dict(counts))

    async def reset(request: web.Request) -> web.Response:
        counts.clear()
        return web.json_response({})

    async def forward(request: web.Request) -> web.StreamResponse:
        counts[kind_of(request.method, request.path)] += 1
        session: aiohttp.ClientSession = request.app["session"]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
        async with session.request(
            request.method,
            target + request.path_qs,
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    response.headers[name] = value
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(1 << 16):
                await response.write(chunk)
            await response.write_eof()
            return response

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_get("/__bench/counts", get_counts)
    app.router.add_post("/__bench/reset", reset)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True)
    args = parser.parse_args()
    web.run_app(build_app(args.target.rstrip("/")), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
