"""The worker's share (issue 32 item 3): CPU per upstream poll with 1,000 and with 100,000 tasks in flight
that are not due (BENCH_WORKER_PARKED), beside the same live tasks being followed.

One `dreamrelay serve` (API and worker) per store (BENCH_WORKER_STORES, default sqlite; `sqlite,postgresql`
for both), its upstream a separate sandbox that keeps every task
queued, so each poll of a live task answers "queued" and the task is polled again on its schedule.
BENCH_WORKER_LIVE tasks (300) are submitted and followed; the parked ones are copies of a pending task
bulk-inserted through the store layer whose next poll is a day away. Each round reads the relay's CPU
(/proc) and the live tasks' poll counts (the store) before and after BENCH_SECONDS × 5 of following:
CPU per poll, median of the rounds. Nothing else asks the relay anything meanwhile, so the CPU is the
worker's (and the process's idle work: the mirror's feed, heartbeats) — the same at both sizes.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench import client, seed, servers
from bench.options import Options
from dreamrelay.runtime import Runtime
from dreamrelay.settings import Settings
from dreamrelay.store import tasks as task_store


def _sizes() -> list[int]:
    raw = os.environ.get("BENCH_WORKER_PARKED", "1000,100000")
    return [int(part) for part in raw.split(",") if part.strip()]


def polls(data_dir: Path, database_url: str | None, ids: list[str]) -> int:
    """How many times the worker has polled upstream for these tasks (their poll counts, summed)."""

    async def work() -> int:
        settings = Settings(data_dir=data_dir, database_url=database_url)
        async with Runtime.from_settings(settings) as rt, rt.db.reader() as conn:
            found = [await task_store.get_task(conn, task_id) for task_id in ids]
        return sum(task.poll_count for task in found if task is not None)

    return asyncio.run(work())


def db_cpu(database_url: str | None) -> dict[int, float]:
    """On PostgreSQL (same machine): CPU seconds so far of each server process of the bench's database
    (the relay's connections: the DB's share of the worker's work). Empty on SQLite (in the relay)."""
    if database_url is None:
        return {}

    async def work() -> list[int]:
        conn = await asyncpg.connect(seed.pg_dsn(database_url))
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()
        return [int(r["pid"]) for r in rows]

    return {pid: servers.proc_cpu(pid) for pid in asyncio.run(work())}


def run(opts: Options, work: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for store in os.environ.get("BENCH_WORKER_STORES", "sqlite").split(","):
        database_url = None
        if store.strip() == "postgresql":
            database_url = seed.pg_create(opts.pg_admin)
            if database_url is None:
                print("  worker/postgresql skipped: PostgreSQL is not reachable", flush=True)
                continue
        try:
            rows += [{"store": store.strip(), **row} for row in _one_store(opts, work, database_url)]
        finally:
            if database_url:
                seed.pg_drop(database_url, opts.pg_admin)
    return rows


def _one_store(opts: Options, work: Path, database_url: str | None) -> list[dict[str, Any]]:
    store = "sqlite" if database_url is None else "postgresql"
    data_dir, logs = work / f"worker-share-{store}", work / "logs"
    key = seed.prepare_store(data_dir, database_url).key
    held = servers.start_sandbox(work / f"sandbox-worker-held-{store}", 86400.0, 0.0, logs)
    live = int(os.environ.get("BENCH_WORKER_LIVE", "300"))
    window = opts.seconds * 5
    rows: list[dict[str, Any]] = []
    try:
        extra = {"database_url": database_url} if database_url else {}
        env = servers.relay_env(
            data_dir, servers.free_port(), sandbox_url=held.url + "/dream-machine/v1", **extra
        )
        relay = servers.start_relay(env, logs, name=f"relay-worker-share-{store}")
        try:
            ids = [client.submit(relay.url, key)["id"] for _ in range(live)]
            template = seed.read_task(data_dir, database_url, ids[0])
            parked = 0
            for size in _sizes():
                seed.insert_tasks(data_dir, database_url, template, size - parked)
                parked = size
                time.sleep(window)  # the live tasks settle into their schedule
                cpu, rate, db = [], [], []
                for _ in range(opts.rounds):
                    cpu_before, polls_before = relay.cpu_seconds(), polls(data_dir, database_url, ids)
                    db_before = db_cpu(database_url)
                    time.sleep(window)
                    used = relay.cpu_seconds() - cpu_before
                    db_after = db_cpu(database_url)
                    made = polls(data_dir, database_url, ids) - polls_before
                    db_used = sum(seconds - db_before.get(pid, 0.0) for pid, seconds in db_after.items())
                    cpu.append(1000 * used / max(made, 1))
                    db.append(1000 * db_used / max(made, 1))
                    rate.append(made / window)
                row = {
                    "parked_in_flight": size,
                    "live": live,
                    "cpu_ms_per_poll": statistics.median(cpu),
                    "polls_per_second": statistics.median(rate),
                    "rounds_cpu_ms": cpu,
                    "db_cpu_ms_per_poll": statistics.median(db),  # PostgreSQL's server processes
                    "rounds_db_cpu_ms": db,
                    "load_average": os.getloadavg()[0],
                }
                database = (
                    f"database {row['db_cpu_ms_per_poll']:.3f} ms per poll "
                    f"(rounds {[round(c, 3) for c in db]}); "
                    if database_url
                    else ""  # SQLite works inside the relay's process: its CPU is the relay's
                )
                print(
                    f"  worker ({store}): {size + live:,} in flight ({live} followed): "
                    f"CPU {row['cpu_ms_per_poll']:.3f} ms per poll, {row['polls_per_second']:.1f} polls/s "
                    f"(rounds {[round(c, 3) for c in cpu]}; {database}load {row['load_average']:.1f})",
                    flush=True,
                )
                rows.append(row)
        finally:
            relay.stop()
    finally:
        held.stop()
    return rows
