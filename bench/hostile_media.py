"""Issue 26 items 2 and 4, measured as the issue measured them: 10 concurrent hostile requests against one
relay (`dreamrelay serve`, SQLite, sandbox kept queued), while `/healthz` is polled and another customer
submits.

- "files" (item 2): inline Files API uploads (`POST /agents/v1/files`, multipart) of a 143 kB PNG that
  declares 7000×7000 pixels;
- "sources" (item 4): `video/modify` requests whose `media.url` answers `BENCH_SOURCE_MIB` (150) MiB
  with its Content-Length, from a server in this process on loopback (the relay allows loopback URLs).

Printed per case: the answers, the server's idle and peak RSS (VmRSS every 50 ms) and their difference,
the slowest `/healthz` (polled every 100 ms throughout), the most TCP connections to the relay's port
established at once, and the other customer's submit (status, seconds). Figures only, no verdicts
beyond the issue's targets (growth < 100 MB, /healthz < 1 s, the other submit succeeds).

Run: `.venv/bin/python -m bench.hostile_media` (BENCH_HOSTILE=10, BENCH_SOURCE_MIB=150,
BENCH_ONLY_CASE=files|sources). For the figure before a change, run it with PYTHONPATH naming the older
code's `src` first.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench import seed, servers
from bench.memory import Sampler

HOSTILE = int(os.environ.get("BENCH_HOSTILE", "10"))
SOURCE_MIB = int(os.environ.get("BENCH_SOURCE_MIB", "150"))
TARGET_GROWTH_MB = 100
HEALTHZ_EVERY = 0.1
CHUNK = b"\0" * (1 << 20)


def huge_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (7000, 7000), (200, 40, 40)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


class _Source(BaseHTTPRequestHandler):
    """Any GET: SOURCE_MIB MiB of zeros labelled video/mp4, with their length."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(SOURCE_MIB * len(CHUNK)))
        self.end_headers()
        try:
            for _ in range(SOURCE_MIB):
                self.wfile.write(CHUNK)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *_args: object) -> None:
        pass


def established(port: int) -> int:
    """TCP connections to 127.0.0.1:`port` in state ESTABLISHED (server side), from /proc/net/tcp."""
    wanted = f":{port:04X}"
    count = 0
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[1].endswith(wanted) and fields[3] == "01":
                count += 1
    return count


class Watch:
    """In threads: /healthz every HEALTHZ_EVERY s (the slowest answer) and the relay's connections."""

    def __init__(self, url: str, port: int) -> None:
        self.url, self.port = url, port
        self.slowest = 0.0
        self.failures = 0
        self.connections = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._healthz), threading.Thread(target=self._sockets)]

    def _healthz(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    ok = client.get(f"{self.url}/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.slowest = max(self.slowest, time.monotonic() - started)
                self.failures += not ok
                self._stop.wait(HEALTHZ_EVERY)

    def _sockets(self) -> None:
        while not self._stop.is_set():
            self.connections = max(self.connections, established(self.port))
            self._stop.wait(0.05)

    def __enter__(self) -> Watch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def one_case(name: str, work: Path, png: bytes) -> dict[str, Any]:
    base = work / name
    prepared = seed.prepare_store(base, extra_keys=1)
    port = servers.free_port()
    env = servers.relay_env(base, port, sandbox_queued_seconds="100000", allow_private_urls="127.0.0.0/8")
    relay = servers.start_relay(env, work / "logs", name=f"relay-{name}")
    source = ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    threading.Thread(target=source.serve_forever, daemon=True).start()
    source_url = f"http://127.0.0.1:{source.server_address[1]}/clip.mp4"
    hostile_key, other_key = prepared.key, prepared.more_keys[0]
    try:
        warm = {"user_prompt": "warm up", "resolution": "540p"}
        httpx.post(f"{relay.url}/luma/generations", json=warm, headers=_bearer(other_key), timeout=60)
        relay.wait_idle()
        idle = Sampler(relay).rss_kib()

        def hostile(_i: int) -> int:
            with httpx.Client(timeout=600, headers=_bearer(hostile_key)) as client:
                if name == "files":
                    files = {"file": ("big.png", png, "image/png")}
                    return client.post(f"{relay.url}/agents/v1/files", files=files).status_code
                body = {
                    "generation_type": "modify_video",
                    "model": "ray-2",
                    "mode": "flex_1",
                    "media": {"url": source_url},
                }
                modify = f"{relay.url}/dream-machine/v1/generations/video/modify"
                return client.post(modify, json=body).status_code

        started = time.monotonic()
        with (
            Sampler(relay) as sampler,
            Watch(relay.url, port) as watch,
            ThreadPoolExecutor(HOSTILE + 1) as pool,
        ):
            answers = [pool.submit(hostile, i) for i in range(HOSTILE)]
            time.sleep(0.5)  # the hostile requests are in
            other_started = time.monotonic()
            other = httpx.post(
                f"{relay.url}/luma/generations",
                json={"user_prompt": "another customer", "resolution": "540p"},
                headers=_bearer(other_key),
                timeout=120,
            )
            other_seconds = time.monotonic() - other_started
            statuses = [a.result() for a in answers]
            answered = time.monotonic() - started
            time.sleep(0.5)
            peak = sampler.peak_kib
        return {
            "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
            "answered_seconds": round(answered, 2),
            "idle_mb": round(idle * 1024 / 1e6, 1),
            "peak_mb": round(peak * 1024 / 1e6, 1),
            "growth_mb": round((peak - idle) * 1024 / 1e6, 1),
            "slowest_healthz_s": round(watch.slowest, 3),
            "healthz_failures": watch.failures,
            "connections_peak": watch.connections,
            "other_submit": {"status": other.status_code, "seconds": round(other_seconds, 3)},
            "targets": {
                "growth_under_100_mb": (peak - idle) * 1024 / 1e6 < TARGET_GROWTH_MB,
                "healthz_under_1_s": watch.slowest < 1.0,
                "other_submit_ok": other.status_code == 200,
            },
        }
    finally:
        source.shutdown()
        relay.stop()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def main() -> int:
    only = os.environ.get("BENCH_ONLY_CASE")
    png = huge_png()
    import dreamrelay

    print(f"dreamrelay from {Path(dreamrelay.__file__).parent}", flush=True)
    print(f"{HOSTILE} hostile requests at once; PNG {len(png)} bytes; source {SOURCE_MIB} MiB", flush=True)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as scratch:
        for name in ("files", "sources"):
            if only and only != name:
                continue
            results[name] = one_case(name, Path(scratch), png)
            r = results[name]
            print(
                f"{name}: answers {r['statuses']} in {r['answered_seconds']} s; RSS idle {r['idle_mb']} MB, "
                f"peak {r['peak_mb']} MB (+{r['growth_mb']}); slowest /healthz {r['slowest_healthz_s']} s "
                f"({r['healthz_failures']} failed); connections at most {r['connections_peak']}; "
                f"other customer {r['other_submit']['status']} in {r['other_submit']['seconds']} s",
                flush=True,
            )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    socket.setdefaulttimeout(60)
    sys.exit(main())
