"""Issue 6's figures: state change → delivery delay, and deliveries per second, at a healthy receiver.

The receiver (bench/receiver.py, its own process on 127.0.0.1) answers 204 at once and notes when
each POST arrived. DreamRelay may call it because DREAMRELAY_ALLOW_PRIVATE_URLS lets 127.0.0.0/8 in.

Delay: tasks with a notify_hook, submitted one after another (in-process sandbox, timings 0, render
cached); each outbox row is written in the transaction of its state change, so arrival − the row's
created_at is the delay from the state change to the receiver having the whole body.

Deliveries per second: N events written straight into the outbox of the stopped relay (copies of a
real event: same payload, URL pointing at the receiver), then the relay is started; the rate is
(N − 1) / (last arrival − first arrival). Baseline, alternated with it: a plain aiohttp client
POSTing the same body N times with as many requests at once as the deliverer allows
(worker.deliverer.MAX_IN_FLIGHT), timed the same way at the same receiver.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import statistics
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import client, seed, servers
from bench.options import Options
from bench.stats import spread
from dreamrelay.worker.deliverer import MAX_IN_FLIGHT

DELAY_TASKS = 20
SUBMIT_GAP_SECONDS = 0.2


def _arrivals(receiver: servers.Process, reset: bool = False) -> list[list[Any]]:
    path = "/__bench/reset" if reset else "/__bench/arrivals"
    request = urllib.request.Request(receiver.url + path, method="POST" if reset else "GET")
    with urllib.request.urlopen(request, timeout=30) as response:
        data: list[list[Any]] = json.loads(response.read())
    return data


def _outbox(data_dir: Path, where: str = "1 = 1", args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    conn = sqlite3.connect(seed.sqlite_path(data_dir))
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM outbox WHERE {where}", args)]
    finally:
        conn.close()


def _wait_delivered(data_dir: Path, timeout: float = 120.0) -> int:
    """Until no outbox row is pending; how many are still pending at the end (0 = all done)."""
    deadline = time.monotonic() + timeout
    while True:
        pending = len(_outbox(data_dir, "status = 'pending'"))
        if pending == 0 or time.monotonic() > deadline:
            return pending
        time.sleep(0.2)


def _rate(times: list[float]) -> float:
    times = sorted(times)
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0


def delay(
    data_dir: Path, env: dict[str, str], key: str, receiver: servers.Process, logs: Path
) -> dict[str, Any]:
    relay = servers.start_relay(env, logs, name="relay-callbacks")
    try:
        warm = client.submit(relay.url, key)  # renders the sandbox video once
        client.wait_terminal(relay.url, key, [warm["id"]], timeout=120)
        _arrivals(receiver, reset=True)
        body = orjson.dumps({**orjson.loads(client.SUBMIT_BODY), "notify_hook": receiver.url + "/hook"})
        ids = []
        for _ in range(DELAY_TASKS):
            ids.append(client.submit(relay.url, key, body)["id"])
            time.sleep(SUBMIT_GAP_SECONDS)
        final = client.wait_terminal(relay.url, key, ids, timeout=120)
        left = _wait_delivered(data_dir)
    finally:
        relay.stop()
    arrived: dict[tuple[str, str], float] = {}
    for at, _path, task_id, sequence in _arrivals(receiver):
        arrived.setdefault((task_id, sequence), at)
    events = [e for e in _outbox(data_dir) if e["task_id"] in set(ids)]
    delays: dict[str, list[float]] = {}
    for event in events:
        at = arrived.get((event["task_id"], str(event["sequence"])))
        if at is not None:
            delays.setdefault("all", []).append(at - event["created_at"])
            delays.setdefault(event["state"], []).append(at - event["created_at"])
    return {
        "tasks": len(ids),
        "completed": sum(1 for s in final.values() if s == "completed"),
        "events": len(events),
        "delivered": len(delays.get("all", [])),
        "left_pending": left,
        "delay_ms": {state: spread(values, 1000, 1) for state, values in sorted(delays.items())},
    }


def _enqueue_copies(data_dir: Path, template: dict[str, Any], url: str, count: int) -> None:
    now = time.time()
    rows = []
    for _ in range(count):
        task_id = str(uuid.uuid4())
        rows.append(
            {
                **template,
                "message_id": f"msg_{task_id.replace('-', '')}_1",
                "task_id": task_id,
                "sequence": 1,
                "url": url,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "lease_owner": None,
                "lease_until": None,
                "last_status": None,
                "last_error": None,
                "created_at": now,
                "delivered_at": None,
            }
        )
    columns = [c for c in template if c != "id"]
    sql = f"INSERT INTO outbox ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    conn = sqlite3.connect(seed.sqlite_path(data_dir))
    try:
        conn.executemany(sql, ([row[c] for c in columns] for row in rows))
        conn.commit()
    finally:
        conn.close()


def _wait_arrivals(receiver: servers.Process, path: str, count: int, timeout: float = 180.0) -> list[float]:
    deadline = time.monotonic() + timeout
    while True:
        times = [a[0] for a in _arrivals(receiver) if a[1] == path]
        if len(times) >= count or time.monotonic() > deadline:
            return times
        time.sleep(0.25)


def _cpu_ms_per(cpu_seconds: float, count: int) -> float:
    return round(cpu_seconds * 1000 / count, 4) if count else 0.0


def _relay_round(
    data_dir: Path,
    template: dict[str, Any],
    relay: servers.Process,
    receiver: servers.Process,
    path: str,
    n: int,
) -> dict[str, Any]:
    """N events written into the outbox of the running (idle) relay, delivered; the relay's CPU
    from just before the write until none is pending is counted against the N deliveries."""
    relay.wait_idle(below=0.1, window=0.3, timeout=30)
    _arrivals(receiver, reset=True)  # the receiver's list holds this round only (it is polled)
    cpu_before = relay.cpu_seconds()
    _enqueue_copies(data_dir, template, receiver.url + path, n)
    times = _wait_arrivals(receiver, path, n)
    left = _wait_delivered(data_dir)
    cpu = relay.cpu_seconds() - cpu_before
    return {
        "arrived": len(times),
        "left_pending": left,
        "per_s": round(_rate(times), 1),
        "cpu_ms_per_delivery": _cpu_ms_per(cpu, n),
        "load": round(os.getloadavg()[0], 1),
    }


async def _plain_posts(url: str, payload: bytes, n: int) -> None:
    queue = iter(range(n))
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)) as session:

        async def worker() -> None:
            for _ in queue:
                async with session.post(url, data=payload, headers=headers) as response:
                    await response.read()

        await asyncio.gather(*(worker() for _ in range(MAX_IN_FLIGHT)))


def _plain_round(receiver: servers.Process, path: str, payload: bytes, n: int) -> dict[str, Any]:
    """The same body N times from this process, which does nothing else meanwhile: its CPU (all
    threads) over the posts is the plain client's cost."""
    _arrivals(receiver, reset=True)
    cpu_before = time.process_time()
    asyncio.run(_plain_posts(receiver.url + path, payload, n))
    cpu = time.process_time() - cpu_before
    times = _wait_arrivals(receiver, path, n)
    return {
        "arrived": len(times),
        "left_pending": 0,
        "per_s": round(_rate(times), 1),
        "cpu_ms_per_delivery": _cpu_ms_per(cpu, n),
        "load": round(os.getloadavg()[0], 1),
    }


def throughput(
    opts: Options, data_dir: Path, env: dict[str, str], receiver: servers.Process, logs: Path
) -> dict[str, Any]:
    # The largest delivered event (a completed task's, with its media): the same body whichever order
    # the latency part happened to deliver events in.
    template = max(_outbox(data_dir, "status = 'delivered'"), key=lambda e: len(bytes(e["payload"])))
    n = opts.callback_events
    sides: dict[str, list[dict[str, Any]]] = {"deliverer": [], "plain aiohttp": []}
    relay = servers.start_relay(env, logs, name="relay-callbacks")
    try:
        # one unrecorded warm-up of each side (connections, code paths, SQLite pages)
        _relay_round(data_dir, template, relay, receiver, "/warm-relay", min(n, 500))
        _plain_round(receiver, "/warm-plain", bytes(template["payload"]), min(n, 500))
        for round_no in range(opts.rounds):
            order = ("plain aiohttp", "deliverer") if round_no % 2 == 0 else ("deliverer", "plain aiohttp")
            for side in order:
                path = f"/bulk-{round_no}-{'relay' if side == 'deliverer' else 'plain'}"
                if side == "deliverer":
                    result = _relay_round(data_dir, template, relay, receiver, path, n)
                else:
                    result = _plain_round(receiver, path, bytes(template["payload"]), n)
                sides[side].append(result)
                print(
                    f"    round {round_no + 1} {side}: {result['per_s']:.0f} deliveries/s, "
                    f"{result['cpu_ms_per_delivery']:.3f} CPU ms/delivery, load {result['load']}",
                    flush=True,
                )
    finally:
        relay.stop()
    summary = {
        side: {
            "per_s_median": round(statistics.median(r["per_s"] for r in runs), 1),
            "cpu_ms_median": round(statistics.median(r["cpu_ms_per_delivery"] for r in runs), 4),
            "rounds": runs,
        }
        for side, runs in sides.items()
    }
    base = summary["plain aiohttp"]
    mine = summary["deliverer"]
    return {
        "events": n,
        "concurrency": MAX_IN_FLIGHT,
        "payload_bytes": len(bytes(template["payload"])),
        **summary,
        "ratio": round(mine["per_s_median"] / base["per_s_median"], 3) if base["per_s_median"] else None,
        "cpu_ratio": (
            round(base["cpu_ms_median"] / mine["cpu_ms_median"], 3) if mine["cpu_ms_median"] else None
        ),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def run(opts: Options, work: Path) -> dict[str, Any]:
    data_dir = work / "callbacks"
    logs = work / "logs"
    key = seed.prepare_store(data_dir).key
    env = servers.relay_env(data_dir, servers.free_port(), allow_private_urls="127.0.0.0/8")
    receiver = servers.start_receiver(logs)
    try:
        found = delay(data_dir, env, key, receiver, logs)
        print(f"  delay state change → receiver: {found['delay_ms'].get('all')}", flush=True)
        rate = throughput(opts, data_dir, env, receiver, logs)
    finally:
        receiver.stop()
    mine, plain = rate["deliverer"], rate["plain aiohttp"]
    print(
        f"  deliverer {mine['per_s_median']:.0f}/s, {mine['cpu_ms_median']:.3f} CPU ms"
        f" | plain aiohttp {plain['per_s_median']:.0f}/s,"
        f" {plain['cpu_ms_median']:.3f} CPU ms | ratio {rate['ratio']} (deliveries/s),"
        f" {rate['cpu_ratio']} (CPU) | load {rate['load_average']}",
        flush=True,
    )
    return {"delay": found, "throughput": rate}
