"""HTTP requests per completed task for a Dooy-style client, with and without the slash normaliser.

Dooy's web client posts to `/luma/generations/` and then polls `GET /luma/generations/{id}` until the
task is completed with a `video.download_url`. Before DreamRelay served `/x/` as `/x`, every submit
was answered 307 and sent again (a browser follows a 307 with the same POST). This script serves the
same DreamRelay twice in one run, once as it is and once with the normaliser taken out and FastAPI's
slash redirect back on (the old behaviour), counts every request that reaches the server, and prints
requests per completed task for each. Run: `.venv/bin/python bench/trailing_slash.py [tasks]`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, cast

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dreamrelay.http.app import create_app
from dreamrelay.http.middleware import TrailingSlash
from dreamrelay.runtime import Runtime
from dreamrelay.services.bootstrap import first_start
from dreamrelay.settings import Settings
from dreamrelay.store import migrate

POLL_SECONDS = 0.25  # Dooy polls every 5 s; the sandbox's timings are shortened by the same factor
DOOY_BODY = {"aspect_ratio": "16:9", "loop": False, "expand_prompt": True, "image_url": "",
             "user_prompt": "a paper boat on a rainy street", "image_end_url": ""}  # fmt: skip
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class Counter:
    """Outermost ASGI layer: counts the client's HTTP requests that reach the server (not the relay's
    own calls to the sandbox upstream mounted in the same app)."""

    def __init__(self, app: Any) -> None:
        self.app, self.requests = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/sandbox"):
            self.requests += 1
        await self.app(scope, receive, send)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def prepare(settings: Settings) -> str:
    async with Runtime.from_settings(settings) as rt:
        await migrate.upgrade(rt.db)
        seeded = await first_start(rt)
    assert seeded is not None
    return seeded.api_key


def serve(app: Any, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread


def dooy_task(client: httpx.Client, counter: Counter) -> tuple[int, int]:
    """One task as Dooy runs it: (requests the server saw for the submit, for the polls)."""
    before = counter.requests
    task = client.post("/luma/generations/", json=DOOY_BODY, headers=HEADERS).json()
    submit = counter.requests - before
    while True:
        time.sleep(POLL_SECONDS)
        got = client.get(f"/luma/generations/{task['id']}", headers=HEADERS).json()
        if got["state"] == "failed" or (got["state"] == "completed" and got["video"]["download_url"]):
            return submit, counter.requests - before - submit


def run(old_behaviour: bool, tasks: int) -> list[tuple[int, int]]:
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        settings = Settings(data_dir=Path(data_dir), port=port, sandbox_queued_seconds=0.5,
                            sandbox_dreaming_seconds=1.5)  # fmt: skip
        key = asyncio.run(prepare(settings))
        app = create_app(settings)
        if old_behaviour:
            app.user_middleware = [m for m in app.user_middleware if m.cls is not cast(object, TrailingSlash)]
            app.router.redirect_slashes = True
        counter = Counter(app)
        server, thread = serve(counter, port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=True, timeout=30,
                              headers={"Authorization": f"Bearer {key}"}) as client:  # fmt: skip
                dooy_task(client, counter)  # warm-up, not counted
                per_task = [dooy_task(client, counter) for _ in range(tasks)]
        finally:
            server.should_exit = True
            thread.join(timeout=20)
        return per_task


def main() -> None:
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"Dooy-style client, {tasks} tasks each; load average {os.getloadavg()[0]:.2f}")
    old = run(True, tasks)
    new = run(False, tasks)
    for name, counts in (("before (307 on /luma/generations/)", old), ("after (served directly)", new)):
        submits, polls = [c[0] for c in counts], [c[1] for c in counts]
        total = [sum(c) for c in counts]
        print(
            f"  {name:36} per completed task: submit {statistics.median(submits)} + polls "
            f"{statistics.median(polls)} = {statistics.median(total)} requests (medians; totals {total})"
        )


if __name__ == "__main__":
    main()
