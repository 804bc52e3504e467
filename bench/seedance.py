"""Seedance through the Ark tasks API (/api/v3) with the DEFAULT sandbox timings (2 s queued, 5 s running).

One `dreamrelay serve` (SQLite, in-process sandbox, its default `sandbox` channel, upstream callbacks on as
by default) takes N Seedance tasks one after another (doubao-seedance-1-0-pro at the default price of
migration 0015, 500 credits per million tokens), 480p at each ratio in turn, 2–5 s; the customer polls
every 0.25 s. Printed: the median of submit → succeeded and its spread, upstream requests per completed
task (dreamrelay_upstream_requests_total by operation, read from /metrics before and after), and the
credits held at submit (priced on the widest ratio) against the credits captured from `usage`.

Run: `.venv/bin/python -m bench.seedance [tasks]` (default 20).
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import seed, servers

API = "/api/v3/contents/generations/tasks"
MODEL = "doubao-seedance-1-0-pro-250528"
RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
POLL_SECONDS = 0.25
_SAMPLE = re.compile(r"^dreamrelay_upstream_requests_total\{([^}]*)\} ([0-9.e+]+)$", re.MULTILINE)


def upstream_requests(client: httpx.Client) -> Counter[str]:
    """Upstream requests so far, by operation."""
    found: Counter[str] = Counter()
    for labels, value in _SAMPLE.findall(client.get("/metrics").text):
        operation = re.search(r'operation="([^"]*)"', labels)
        found[operation.group(1) if operation else "?"] += int(float(value))
    return found


def one(client: httpx.Client, index: int) -> tuple[float, dict[str, Any]]:
    ratio, seconds = RATIOS[index % len(RATIOS)], 2 + index % 4
    body = {"model": MODEL, "content": [{"type": "text", "text": f"clip {index} --rs 480p --rt {ratio}"}],
            "duration": seconds}  # fmt: skip
    began = time.monotonic()
    created = client.post(API, json=body)
    created.raise_for_status()
    task_id = created.json()["id"]
    while True:
        task: dict[str, Any] = client.get(f"{API}/{task_id}").json()
        if task["status"] not in ("queued", "running"):
            if task["status"] != "succeeded":
                raise RuntimeError(f"task {task_id}: {task}")
            return time.monotonic() - began, task
        time.sleep(POLL_SECONDS)


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory(prefix="bench-seedance-") as work:
        data_dir = Path(work) / "data"
        key = seed.prepare_store(data_dir).key
        env = servers.relay_env(
            data_dir, servers.free_port(), sandbox_queued_seconds="2", sandbox_dreaming_seconds="5"
        )
        relay = servers.start_relay(env, Path(work))
        try:
            with httpx.Client(
                base_url=relay.url, timeout=120, headers={"Authorization": f"Bearer {key}"}
            ) as client:
                return _run(client, count)
        finally:
            relay.stop()


def _run(client: httpx.Client, count: int) -> int:
    before = upstream_requests(client)
    times: list[float] = []
    held = captured = tokens = 0
    for index in range(count):
        seconds, task = one(client, index)
        times.append(seconds)
        held += task["credits"]["held"]
        captured += task["credits"]["charged"]
        tokens += task["usage"]["completion_tokens"]
    requests = upstream_requests(client) - before
    load = os.getloadavg()
    print(
        f"Seedance via /api/v3, default sandbox timings (2 s queued + 5 s running), {count} tasks one at a "
        f"time, 480p 2–5 s, every ratio; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load[0]:.2f}"
    )
    print(
        f"submit → succeeded: median {statistics.median(times):.2f} s (min {min(times):.2f}, "
        f"max {max(times):.2f})"
    )
    per_task = ", ".join(f"{op} {n / count:.2f}" for op, n in sorted(requests.items()))
    print(f"upstream requests per completed task: {sum(requests.values()) / count:.2f} ({per_task})")
    print(
        f"credits held {held}, captured {captured} ({100 * captured / held:.1f} %), "
        f"released {held - captured}; {tokens} tokens"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
