"""Issue 2's figures: submit → `completed` as the customer sees it, and the 100-id batch on one connection.

One store, two relay processes in turn (the in-process sandbox's timings are process settings):
first the fastest timings (0 s queued + 0 s dreaming; the first task renders the sandbox video, the
measured ones hit the render cache), then the default timings (2 s + 5 s) on the same store, so the
render cache is warm there too. Each measured task is submitted and then read with GET every 50 ms
until it says `completed`; the figure is the time from just before the submit to that answer. The
store's own view (tasks.finished_at − created_at) is given beside it.

Then the 100-id batch query on ONE connection (the latency a single poller sees, not throughput: the
api section gives req/s and p50/p99 under 16 connections), against the bare ASGI app answering the
same bytes, alternated rounds.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import api, client, seed, servers
from bench.compare import compare
from bench.load import LoadGenerator, Target
from bench.options import Options
from bench.stats import spread

POLL_SECONDS = 0.05
# (label, queued s, dreaming s, tasks, submitted all at once?)
TIMINGS = (("fastest 0 s + 0 s", 0.0, 0.0, 10, False), ("default 2 s + 5 s", 2.0, 5.0, 5, True))


Measured = tuple[str, float, int, float, float]  # id, seconds, GETs, wall time sent, wall time seen


async def _one(session: aiohttp.ClientSession, url: str, limit_s: float) -> Measured:
    """Submit, then GET every 50 ms until completed."""
    sent_at = time.time()
    started = time.perf_counter()
    async with session.post(url + "/luma/generations", data=client.SUBMIT_BODY) as response:
        payload = await response.read()
        if response.status != 200:
            raise RuntimeError(f"submit answered {response.status}: {payload[:300]!r}")
    task_id = json.loads(payload)["id"]
    gets = 0
    while time.perf_counter() - started < limit_s:
        async with session.get(f"{url}/luma/generations/{task_id}") as response:
            state = json.loads(await response.read())["state"]
        gets += 1
        if state == "completed":
            return task_id, time.perf_counter() - started, gets, sent_at, time.time()
        if state == "failed":
            raise RuntimeError(f"task {task_id} failed")
        await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError(f"task {task_id} not completed within {limit_s} s")


async def _measure(url: str, key: str, count: int, together: bool) -> list[Measured]:
    async with aiohttp.ClientSession(headers=client.headers(key)) as session:
        if together:
            return list(await asyncio.gather(*(_one(session, url, 120) for _ in range(count))))
        return [await _one(session, url, 120) for _ in range(count)]


def run(opts: Options, load: LoadGenerator, work: Path) -> dict[str, Any]:
    data_dir = work / "lifecycle"
    logs = work / "logs"
    key = seed.prepare_store(data_dir).key
    port = servers.free_port()
    out: dict[str, Any] = {"poll_every_ms": POLL_SECONDS * 1000, "timings": []}
    ids: list[str] = []
    for label, queued, dreaming, count, together in TIMINGS:
        env = servers.relay_env(
            data_dir, port, sandbox_queued_seconds=str(queued), sandbox_dreaming_seconds=str(dreaming)
        )
        relay = servers.start_relay(env, logs, name="relay-lifecycle")
        try:
            if not ids:  # the one render of the sandbox video, not measured
                asyncio.run(_measure(relay.url, key, 1, together=False))
            measured = asyncio.run(_measure(relay.url, key, count, together))
        finally:
            relay.stop()
        rows = {r["id"]: r for r in seed.task_rows(data_dir, None, [m[0] for m in measured])}
        ids += [m[0] for m in measured]
        seen = [m[1] for m in measured]
        stored = [rows[m[0]]["finished_at"] - rows[m[0]]["created_at"] for m in measured]
        # The customer's time = (sent → row created) + stored + (row finished → a GET saw it).
        before = [rows[m[0]]["created_at"] - m[3] for m in measured]
        after = [m[4] - rows[m[0]]["finished_at"] for m in measured]
        figure: dict[str, Any] = {
            "timings": label,
            "sandbox_s": queued + dreaming,
            "tasks": count,
            "submitted": "all at once" if together else "one after another",
            "customer_s": spread(seen),
            "store_s": spread(stored),
            "sent_to_row_ms": spread(before, 1000, 1),
            "finished_to_seen_ms": spread(after, 1000, 1),
            "gets_per_task": round(sum(m[2] for m in measured) / count, 1),
        }
        out["timings"].append(figure)
        print(
            f"  {label}: submit → completed median {figure['customer_s']['median']:.3f} s "
            f"(store {figure['store_s']['median']:.3f} s) over {count} tasks",
            flush=True,
        )

    # The 100-id batch on one connection: 99 copies of a completed row plus one real task.
    template = seed.task_rows(data_dir, None, [ids[0]])[0]
    copies, _ = seed.insert_copies(data_dir, None, template, 99)
    body = orjson.dumps({"ids": [ids[0], *copies]})
    target = Target("POST", "/luma/tasks", client.headers(key), (body,))
    relay = servers.start_relay(servers.relay_env(data_dir, port), logs, name="relay-lifecycle")
    bare: servers.Process | None = None
    try:
        answer = api.capture(relay, key, "POST", "/luma/tasks", body)
        if len(orjson.loads(answer)) != 100:
            raise RuntimeError("the 100-id batch did not return 100 tasks")
        routes_file = work / "lifecycle-bare-routes.json"
        routes_file.write_text(json.dumps([api.route("POST", "/luma/tasks", body, answer)]))
        bare = servers.start_bare(routes_file, logs)
        one_conn = replace(opts, connections=1, seconds=min(opts.seconds, 3.0))
        batch = compare(
            "batch 100 ids, 1 connection",
            load,
            one_conn,
            candidate_server=relay,
            candidate=target,
            baseline_server=bare,
            baseline=target,
            response_bytes=len(answer),
        )
    finally:
        relay.stop()
        if bare is not None:
            bare.stop()
    out["batch_100_one_connection"] = batch.as_dict()
    return out
