"""Benchmark 5: following tasks to completion.

DreamRelay's channel points at a counting proxy in front of a separate sandbox process (tiny
timings, render cached). N tasks are submitted at a steady rate; once all are terminal we report
the upstream requests per completed task (from the proxy, by kind, and the poll_count column as a
cross-check) and the lag from the sandbox marking a generation completed (the mtime of its record
file, written last) to DreamRelay storing it as completed (tasks.finished_at)."""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from bench import client, seed, servers
from bench.options import Options
from bench.stats import pct

POLL_EVERY_15S = 15.0


def _counts(proxy: servers.Process, reset: bool = False) -> dict[str, int]:
    request = urllib.request.Request(
        proxy.url + ("/__bench/reset" if reset else "/__bench/counts"), method="POST" if reset else "GET"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        data: dict[str, int] = json.loads(response.read())
    return data


async def _submit_steady(url: str, key: str, count: int, rate: float) -> tuple[list[str], list[float], int]:
    """Submit `count` tasks at `rate` per second; their ids, submit latencies and failures."""
    ids: list[str] = []
    latencies: list[float] = []
    failures = 0
    async with aiohttp.ClientSession(headers=client.headers(key)) as session:

        async def one() -> None:
            nonlocal failures
            started = time.perf_counter()
            async with session.post(url + "/luma/generations", data=client.SUBMIT_BODY) as response:
                payload = await response.read()
                if response.status != 200:
                    failures += 1
                    return
            latencies.append(time.perf_counter() - started)
            ids.append(json.loads(payload)["id"])

        start = time.perf_counter()
        running = []
        for n in range(count):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            running.append(asyncio.create_task(one()))
        await asyncio.gather(*running)
    return ids, latencies, failures


def run(opts: Options, work: Path) -> dict[str, Any]:
    """Both ways of following: upstream callbacks with a rare safety poll, and polling alone."""
    return {mode: run_mode(opts, work, callbacks=mode == "callbacks") for mode in ("callbacks", "polling")}


def run_mode(opts: Options, work: Path, *, callbacks: bool) -> dict[str, Any]:
    base = work / ("following-callbacks" if callbacks else "following-polling")
    logs = work / "logs"
    upstream_dir = base / "upstream"
    sandbox = servers.start_sandbox(upstream_dir, opts.follow_queued, opts.follow_dreaming, logs)
    proxy = servers.start_proxy(sandbox.url, logs)
    relay: servers.Process | None = None
    try:
        channel: dict[str, object] = {
            "kind": "luma",
            "base_url": proxy.url + "/dream-machine/v1",
            "secret_key": servers.SANDBOX_KEY,
            "media_networks": "127.0.0.0/8",  # the sandbox's files are on loopback
            "concurrency": 64,
        }
        prepared = seed.prepare_store(base / "relay", channel=channel)
        env = servers.relay_env(
            base / "relay",
            servers.free_port(),
            sandbox_enabled="false",
            upstream_callbacks="true" if callbacks else "false",
        )
        relay = servers.start_relay(env, logs, name="relay-following")
        key = prepared.key

        warm = client.submit(relay.url, key)  # renders once; every later task hits the render cache
        if client.wait_terminal(relay.url, key, [warm["id"]], 120).get(warm["id"]) != "completed":
            raise RuntimeError(f"warm-up task did not complete; see {relay.log_path} and {sandbox.log_path}")
        _counts(proxy, reset=True)

        print(
            f"[following, {'callbacks' if callbacks else 'polling only'}] {opts.follow_tasks} tasks at "
            f"{opts.follow_rate:g}/s, sandbox "
            f"{opts.follow_queued:g} s queued + {opts.follow_dreaming:g} s dreaming",
            flush=True,
        )
        started = time.time()
        ids, submit_latencies, failures = asyncio.run(
            _submit_steady(relay.url, key, opts.follow_tasks, opts.follow_rate)
        )
        final = client.wait_terminal(relay.url, key, ids, timeout=600)
        elapsed = time.time() - started
        counts = _counts(proxy)
        rows = seed.task_rows(base / "relay", None, ids)
        memory = relay.memory_kib()
    finally:
        for process in (relay, proxy, sandbox):
            if process is not None:
                process.stop()

    completed = [r for r in rows if r["state"] == "completed"]
    lags: list[float] = []
    for row in completed:
        record = upstream_dir / "sandbox" / "generations" / f"{row['upstream_id']}.json"
        lags.append(row["finished_at"] - record.stat().st_mtime)
    turnaround = [r["finished_at"] - r["created_at"] for r in completed]
    total_upstream = sum(counts.values())
    # The anchors' way: submit, then one request per task every 15 s until a poll sees it finished.
    every_15s = [1 + math.ceil(t / POLL_EVERY_15S) for t in turnaround]
    per_task = {k: round(v / len(completed), 2) for k, v in sorted(counts.items())} if completed else {}
    result: dict[str, Any] = {
        "mode": "callbacks" if callbacks else "polling",
        "tasks": opts.follow_tasks,
        "rate_per_s": opts.follow_rate,
        "sandbox_queued_s": opts.follow_queued,
        "sandbox_dreaming_s": opts.follow_dreaming,
        "submit_failures": failures,
        "completed": len(completed),
        "not_completed": {i: s for i, s in final.items() if s != "completed"},
        "wall_seconds": round(elapsed, 1),
        "upstream_requests": counts,
        "upstream_requests_per_completed": round(total_upstream / len(completed), 2) if completed else None,
        "upstream_requests_per_completed_by_kind": per_task,
        "every_15s_requests_per_completed": round(statistics.fmean(every_15s), 2) if every_15s else None,
        "every_15s_lag_ms_median": POLL_EVERY_15S / 2 * 1000,
        "poll_count_mean": round(statistics.fmean(r["poll_count"] for r in completed), 2)
        if completed
        else None,
        "lag_ms": {
            "median": round(statistics.median(lags) * 1000, 1) if lags else None,
            "p99": round(pct(lags, 99) * 1000, 1) if lags else None,
            "max": round(max(lags) * 1000, 1) if lags else None,
        },
        "turnaround_s": {
            "median": round(statistics.median(turnaround), 2) if turnaround else None,
            "p99": round(pct(turnaround, 99), 2) if turnaround else None,
        },
        "submit_ms": {
            "median": round(statistics.median(submit_latencies) * 1000, 1) if submit_latencies else None,
            "p99": round(pct(submit_latencies, 99) * 1000, 1) if submit_latencies else None,
        },
        "relay_memory_kib": memory,
    }
    print(
        f"    {len(completed)}/{opts.follow_tasks} completed; upstream requests per task "
        f"{result['upstream_requests_per_completed']} {per_task}; "
        f"lag median {result['lag_ms']['median']} ms, p99 {result['lag_ms']['p99']} ms",
        flush=True,
    )
    return result
