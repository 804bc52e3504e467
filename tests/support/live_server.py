"""Run an ASGI app on a real loopback port, in a background thread, for tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

GRACEFUL_SHUTDOWN_SECONDS = 3


@contextmanager
def live_server(app: Any, *, host: str = "127.0.0.1", port: int = 0, http: Any = "auto") -> Iterator[str]:
    """Serve `app` with uvicorn on `host` (a free port when 0), with the HTTP protocol `http` (uvicorn's
    own unless given); yield its base URL. As `serve` runs it: no header from a peer uvicorn trusts by
    default (127.0.0.1) names the client."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        access_log=False,
        http=http,
        proxy_headers=False,
        # A request still open at the end (a receiver told to stall, a client's long wait) is cancelled
        # after this long rather than holding the test up.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("live server failed to start")
        if time.monotonic() > deadline:
            raise TimeoutError("live server did not start within 20 s")
        time.sleep(0.01)
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
