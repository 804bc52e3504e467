"""Kling video, submit → completed, with the DEFAULT set-up: one `dreamrelay serve` (SQLite, the in-process
sandbox channel at its default timings, 2 s queued + 5 s dreaming, upstream callbacks on). The customer
calls /kling/v1/videos as Dooy's web client does and polls every 0.25 s. Printed per case: the median of
submit → completed and its spread, and the upstream requests per completed task (the relay's
dreamrelay_upstream_requests_total, submits and polls; Kling's callbacks are not requests we make).

Then the estimate against the capture over 20 tasks (std and pro, 5 s and 10 s, text and image; a quarter
of the 10 s ones marked `[sandbox:short]`, which delivers 5 s): the credits held at submit (the price of
the clip asked for) against the credits captured (the price of the clip delivered), from the ledger.

Run: `.venv/bin/python -m bench.kling_video [rounds]` (default 3).
"""

from __future__ import annotations

import base64
import io
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench import seed, servers

BASE = "/kling/v1/videos"
POLL_SECONDS = 0.25


def _png() -> str:
    out = io.BytesIO()
    Image.new("RGB", (640, 640), (40, 120, 200)).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def _finish(client: httpx.Client, word: str, body: dict[str, Any]) -> float:
    began = time.monotonic()
    created = client.post(f"{BASE}/{word}", json=body)
    created.raise_for_status()
    task_id = created.json()["data"]["task_id"]
    while True:
        data: dict[str, Any] = _get(client, f"{BASE}/{word}/{task_id}").json()["data"]
        if data["task_status"] == "succeed":
            return time.monotonic() - began
        if data["task_status"] == "failed":
            raise RuntimeError(f"{word} failed: {data['task_status_msg']}")
        time.sleep(POLL_SECONDS)


def _get(client: httpx.Client, path: str) -> httpx.Response:
    """A GET, asked again once if a kept-alive connection was closed under it (a busy machine)."""
    try:
        return client.get(path)
    except httpx.RemoteProtocolError:
        return client.get(path)


def upstream_requests(client: httpx.Client) -> float:
    """Submits and polls the relay has sent upstream so far (from /metrics)."""
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("dreamrelay_upstream_requests_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory(prefix="bench-kling-") as work:
        data_dir = Path(work) / "data"
        key = seed.prepare_store(data_dir).key
        env = servers.relay_env(
            data_dir, servers.free_port(), sandbox_queued_seconds="2", sandbox_dreaming_seconds="5"
        )
        relay = servers.start_relay(env, Path(work))
        try:
            _run(relay, key, rounds)
            ids = _twenty(relay, key)
        finally:
            relay.stop()
        _estimate_against_capture(seed.sqlite_path(data_dir), ids)
    return 0


DOOY = {
    "negative_prompt": "",
    "image_tail": "",
    "aspect_ratio": "16:9",
    "mode": "std",
    "model": "kling-v1-6",
}


def _run(relay: servers.Process, key: str, rounds: int) -> None:
    image = _png()
    dooy = {
        "negative_prompt": "",
        "image_tail": "",
        "aspect_ratio": "16:9",
        "mode": "std",
        "model": "kling-v1-6",
    }
    cases = {
        "text2video std 5 s 16:9": (
            "text2video",
            {**dooy, "prompt": "a paper boat", "image": "", "duration": "5"},
        ),
        "image2video std 5 s": ("image2video", {**dooy, "prompt": "", "image": image, "duration": "5"}),
        "text2video std 10 s 16:9": (
            "text2video",
            {**dooy, "prompt": "a kite", "image": "", "duration": "10"},
        ),
    }
    load = os.getloadavg()
    print(
        f"Kling video, submit → completed, default set-up (sandbox channel, 2 s queued + 5 s dreaming, "
        f"callbacks on); {rounds} rounds; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load[0]:.2f}",
        flush=True,
    )
    print(f"{'case':28} {'median s':>9} {'min s':>7} {'max s':>7} {'upstream requests/task':>23}")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=relay.url, headers=headers, timeout=300) as client:
        for name, (word, body) in cases.items():
            before = upstream_requests(client)
            seconds = [_finish(client, word, body) for _ in range(rounds)]
            per_task = (upstream_requests(client) - before) / rounds
            print(
                f"{name:28} {statistics.median(seconds):9.2f} {min(seconds):7.2f} {max(seconds):7.2f}"
                f" {per_task:23.1f}",
                flush=True,
            )


def _twenty(relay: servers.Process, key: str) -> list[str]:
    """20 tasks submitted at once, followed until each is done: their ids."""
    image = _png()
    bodies = []
    for n in range(20):
        mode, seconds, word = (
            ("std", "pro")[n % 2],
            ("5", "10")[(n // 2) % 2],
            ("text2video", "image2video")[n % 3 == 0],
        )
        short = " [sandbox:short]" if seconds == "10" and n % 4 == 2 else ""
        body = {**DOOY, "mode": mode, "duration": seconds, "prompt": f"a kite {n}{short}", "image": ""}
        if word == "image2video":
            body["image"] = image
        bodies.append((word, body))
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=relay.url, headers=headers, timeout=300) as client:
        made = []
        for word, body in bodies:
            created = client.post(f"{BASE}/{word}", json=body)
            created.raise_for_status()
            made.append((word, created.json()["data"]["task_id"]))
        for word, task_id in made:
            while _get(client, f"{BASE}/{word}/{task_id}").json()["data"]["task_status"] not in (
                "succeed",
                "failed",
            ):
                time.sleep(POLL_SECONDS)
    return [task_id for _, task_id in made]


def _estimate_against_capture(database: Path, ids: list[str]) -> None:
    marks = ",".join("?" * len(ids))
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            f"SELECT kind, SUM(amount), COUNT(*) FROM ledger WHERE task_id IN ({marks}) GROUP BY kind", ids
        ).fetchall()
    sums = {kind: (int(total), count) for kind, total, count in rows}
    # A capture row keeps what the hold took (amount 0); the release gives back the rest.
    held, released = -sums.get("hold", (0, 0))[0], sums.get("release", (0, 0))[0]
    captured = held - released
    print(
        f"estimate against capture over {len(ids)} tasks: held {held}, captured {captured} "
        f"({100 * captured / held:.1f} %), released {released}; ledger rows {sums}",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
