"""Another API process on the same store, submitting at once: `python -m tests.support.submit_burst
<data dir> <database url or ""> <key> <submits>` serves the relay (worker off) on a port of its own, prints
"ready", sends `submits` concurrent `POST /luma/generations` once a line comes on its standard input, and
prints their status codes as JSON (the in-flight cap's race across processes)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import orjson

from dreamrelay.http.app import create_app
from dreamrelay.settings import Settings
from tests.support.live_server import live_server
from tests.support.ports import free_port


async def burst(url: str, key: str, submits: int) -> list[int]:
    """`submits` concurrent submits; their status codes."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        body = {"user_prompt": "race", "resolution": "540p"}
        answers = await asyncio.gather(*(client.post("/luma/generations", json=body) for _ in range(submits)))
    return [a.status_code for a in answers]


def main(data_dir: Path, database_url: str | None, key: str, submits: int) -> None:
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        port=free_port(),
        worker_enabled=False,
        sandbox_queued_seconds=3600.0,
    )
    with live_server(create_app(settings), port=settings.port) as url:
        print("ready", flush=True)
        sys.stdin.readline()
        print(orjson.dumps(asyncio.run(burst(url, key, submits))).decode(), flush=True)


if __name__ == "__main__":
    data_dir, url, key, submits = sys.argv[1:]
    main(Path(data_dir), url or None, key, int(submits))
