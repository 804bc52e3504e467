"""Issue 13's figures: submit → completed per Agents API type, and upstream requests per completed task.

One relay process with the DEFAULT sandbox timings (2 s queued + 5 s processing). Its only channel is
of kind `luma-agents`, pointed through bench/proxy.py (which counts every request, output downloads
included, since it keeps the Host header) at the relay's own sandbox Agents API: the production path
of a real Luma channel. Each type is measured on TASKS generations submitted together at /agents/v1,
each read with GET every 50 ms until `completed`; the figure is the time from just before its submit
to that answer. 360p drafts: the point is the lifecycle, not the render.

Run as `python -m bench.agents` (about a minute).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench import client, seed, servers
from bench.stats import spread

POLL_SECONDS = 0.05
TASKS = 3
DRAFT = {"resolution": "360p"}
SANDBOX_KEY = "bench-sandbox-key"  # the relay's sandbox key, given so the channel can hold it too


async def _one(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[str, float]:
    started = time.perf_counter()
    async with session.post(url + "/agents/v1/generations", json=body) as response:
        payload = await response.json()
        if response.status != 201:
            raise RuntimeError(f"create answered {response.status}: {payload}")
    while time.perf_counter() - started < 120:
        async with session.get(f"{url}/agents/v1/generations/{payload['id']}") as response:
            generation = await response.json()
        if generation["state"] == "completed":
            return payload["id"], time.perf_counter() - started
        if generation["state"] == "failed":
            raise RuntimeError(f"generation failed: {generation}")
        await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError(f"generation {payload['id']} did not complete")


async def _measure(url: str, key: str) -> dict[str, Any]:
    async with aiohttp.ClientSession(headers=client.headers(key)) as session:
        source_id, _ = await _one(session, url, {"prompt": "a source clip", "type": "video", "video": DRAFT})
        image_id, _ = await _one(session, url, {"prompt": "a source image", "type": "image"})
        bodies: dict[str, dict[str, Any]] = {
            "video 5s": {"prompt": "a kite", "type": "video", "video": DRAFT},
            "video 10s": {"prompt": "a kite", "type": "video", "video": {**DRAFT, "duration": "10s"}},
            "video_edit": {
                "prompt": "blue",
                "type": "video_edit",
                "source": {"generation_id": source_id},
                "video": DRAFT,
            },
            "video_reframe": {
                "prompt": "tall",
                "type": "video_reframe",
                "aspect_ratio": "9:16",
                "source": {"generation_id": source_id},
                "video": DRAFT,
            },
            "image": {"prompt": "a fox", "type": "image"},
            "image_edit": {
                "prompt": "a fox at night",
                "type": "image_edit",
                "source": {"generation_id": image_id},
            },
        }
        figures: dict[str, Any] = {}
        for label, body in bodies.items():
            runs = await asyncio.gather(*(_one(session, url, body) for _ in range(TASKS)))
            figures[label] = spread([seconds for _id, seconds in runs])
            print(f"  {label}: submit → completed median {figures[label]['median']:.3f} s ({TASKS} at once)")
        return figures


def run(work: Path) -> dict[str, Any]:
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    port = servers.free_port()
    proxy = servers.start_proxy(f"http://{servers.HOST}:{port}", logs)
    channel = {
        "kind": "luma-agents",
        "base_url": proxy.url + "/sandbox/agents/v1",
        "secret_key": SANDBOX_KEY,
        "media_networks": "127.0.0.0/8",  # outputs are copied through netguard
    }
    key = seed.prepare_store(work / "agents", channel=channel).key
    env = servers.relay_env(
        work / "agents",
        port,
        sandbox_queued_seconds="2",
        sandbox_dreaming_seconds="5",
        sandbox_key=SANDBOX_KEY,
    )
    relay = servers.start_relay(env, logs, name="relay-agents")
    try:
        load = os.getloadavg()
        figures = asyncio.run(_measure(relay.url, key))
        counts = httpx.get(proxy.url + "/__bench/counts").json()
    finally:
        relay.stop()
        proxy.stop()
    completed = 2 + TASKS * 6
    per_task = {kind: round(n / completed, 2) for kind, n in counts.items()}
    total = round(sum(counts.values()) / completed, 2)
    print(f"  upstream requests per completed task: {total} ({per_task}) over {completed} tasks")
    print(f"  load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return {"submit_to_completed_s": figures, "upstream_requests_per_task": total, "by_kind": per_task}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-agents-") as tmp:
        print(json.dumps(run(Path(tmp)), indent=2))


if __name__ == "__main__":
    main()
