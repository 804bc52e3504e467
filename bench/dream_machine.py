"""Submit → completed for each Dream Machine generation type, with the DEFAULT sandbox timings.

One `dreamrelay serve` (SQLite, in-process sandbox at its defaults: 2 s queued, 5 s dreaming) takes,
one after another, a plain ray-2 text-to-video (the same-run baseline) and each newer type: Photon
images (JPEG, PNG), upscale, add audio, video reframe, image reframe and modify. The customer polls
every 0.25 s. Printed per type: the median of submit → completed, its spread, and the relay
process's CPU seconds per completed task (the sandbox renders in the same process, so rendering is in
that figure too). Clips are 540p 1:1 (768×768, 5 s) so the renders stay small on 2 shared cores.

Run: `.venv/bin/python -m bench.dream_machine [rounds]` (default 3).
"""

from __future__ import annotations

import base64
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench import seed, servers

API = "/dream-machine/v1"
POLL_SECONDS = 0.25
VIDEO = {"model": "ray-2", "aspect_ratio": "1:1", "resolution": "540p"}


def _red_png() -> str:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (220, 30, 30)).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _finish(client: httpx.Client, path: str, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    began = time.monotonic()
    created = client.post(API + path, json=body)
    created.raise_for_status()
    generation_id = created.json()["id"]
    while True:
        generation: dict[str, Any] = client.get(f"{API}/generations/{generation_id}").json()
        if generation["state"] in ("completed", "failed"):
            if generation["state"] == "failed":
                raise RuntimeError(f"{path} failed: {generation['failure_reason']}")
            return time.monotonic() - began, generation
        time.sleep(POLL_SECONDS)


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory(prefix="bench-dm-") as work:
        data_dir = Path(work) / "data"
        key = seed.prepare_store(data_dir).key
        env = servers.relay_env(
            data_dir,
            servers.free_port(),
            sandbox_queued_seconds="2",  # the defaults, stated: this figure is about them
            sandbox_dreaming_seconds="5",
        )
        relay = servers.start_relay(env, Path(work))
        try:
            return _run(relay, key, rounds)
        finally:
            relay.stop()


def _run(relay: servers.Process, key: str, rounds: int) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    red = _red_png()
    with httpx.Client(base_url=relay.url, headers=headers, timeout=120) as client:
        _seconds, parent = _finish(client, "/generations", {**VIDEO, "prompt": "red", "keyframes": {
            "frame0": {"type": "image", "url": red}}})  # fmt: skip
        source = {"url": parent["assets"]["video"]}
        cases: dict[str, Callable[[], tuple[str, dict[str, Any]]]] = {
            "video ray-2 (baseline)": lambda: ("/generations", {**VIDEO, "prompt": "a paper boat"}),
            "image photon-1 jpg": lambda: ("/generations/image", {"prompt": "a fox", "aspect_ratio": "1:1"}),
            "image photon-flash-1 png": lambda: (
                "/generations/image",
                {"model": "photon-flash-1", "prompt": "a fox", "aspect_ratio": "1:1", "format": "png"},
            ),
            "upscale 540p → 720p": lambda: (f"/generations/{parent['id']}/upscale", {"resolution": "720p"}),
            "add_audio": lambda: (f"/generations/{parent['id']}/audio", {"prompt": "rain on a roof"}),
            "reframe_video 1:1 → 16:9": lambda: (
                "/generations/video/reframe",
                {
                    "generation_type": "reframe_video",
                    "model": "ray-2",
                    "aspect_ratio": "16:9",
                    "media": source,
                },
            ),
            "reframe_image → 9:16": lambda: (
                "/generations/image/reframe",
                {
                    "generation_type": "reframe_image",
                    "model": "photon-1",
                    "aspect_ratio": "9:16",
                    "media": {"url": red},
                },
            ),
            "modify_video flex_1": lambda: (
                "/generations/video/modify",
                {"generation_type": "modify_video", "model": "ray-2", "mode": "flex_1", "media": source},
            ),
        }
        load = os.getloadavg()
        print(
            f"Dream Machine types, submit → completed, default sandbox timings (2 s queued + 5 s dreaming); "
            f"{rounds} rounds; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load[0]:.2f}",
            flush=True,
        )
        print(f"{'type':28} {'median s':>9} {'min s':>7} {'max s':>7} {'relay CPU s/task':>17}")
        for name, case in cases.items():
            times: list[float] = []
            cpu_before = relay.cpu_seconds()
            for _ in range(rounds):
                path, body = case()
                seconds, _done = _finish(client, path, body)
                times.append(seconds)
            cpu = (relay.cpu_seconds() - cpu_before) / rounds
            print(
                f"{name:28} {statistics.median(times):9.2f} {min(times):7.2f} {max(times):7.2f} {cpu:17.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
