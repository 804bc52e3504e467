"""Free loopback ports for servers a test must name before they start (subprocesses, a relay whose
public URL carries its port). In-process servers bind port 0 themselves (`live_server`) and need none.

The kernel hands out a port that is free now; between our check and the server's bind, another test
could be handed the same one. Within a process, a port given out lately is never given again; under
pytest-xdist each worker only gives out its own share of the ports, so two workers never race for one.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import deque

_recent: deque[int] = deque(maxlen=256)
_lock = threading.Lock()


def _share() -> tuple[int, int]:
    """(this worker's index, the number of workers): (0, 1) without xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", …
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    return index % max(count, 1), max(count, 1)


def free_port() -> int:
    """A loopback port nobody listens on, of this worker's share, not given out lately here."""
    index, count = _share()
    with _lock:
        for _ in range(10_000):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            # port // 2: the kernel may prefer odd ports for bind(0); halving spreads them evenly.
            if (port // 2) % count == index and port not in _recent:
                _recent.append(port)
                return port
    raise RuntimeError("no free loopback port of this worker's share")
