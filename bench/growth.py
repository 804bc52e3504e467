"""Benchmark 4: batch query (100 ids) latency as the store grows to 10k, 100k, 1M tasks, on SQLite and
(when reachable) PostgreSQL, read from the store (body cache off); the relay's memory after the largest."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench import client, diagnose, seed, servers
from bench.load import LoadGenerator, Target
from bench.options import Options

SLOW_MS = 250.0
ID_SETS = 20  # different 100-id bodies sent in turn, drawn at random from the whole store


def _store_bytes(data_dir: Path, database_url: str | None) -> int:
    if database_url is None:
        return sum(p.stat().st_size for p in data_dir.glob("dreamrelay.db*"))

    async def work() -> int:
        conn = await asyncpg.connect(seed.pg_dsn(database_url))
        try:
            return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        finally:
            await conn.close()

    return asyncio.run(work())


def run_store(
    opts: Options, load: LoadGenerator, work: Path, backend: str, database_url: str | None
) -> dict[str, Any]:
    data_dir = work / f"growth-{backend}"
    logs = work / "logs"
    prepared = seed.prepare_store(data_dir, database_url)
    extra = {"database_url": database_url} if database_url else {}
    # The finished-body cache would answer every repeated id from memory; growth is about the store,
    # so it is off here (the path an id still in flight always takes).
    env = servers.relay_env(data_dir, servers.free_port(), body_cache_bytes="0", **extra)
    auth = {"Authorization": f"Bearer {prepared.key}", "Content-Type": "application/json"}

    relay = servers.start_relay(env, logs, name=f"relay-growth-{backend}")
    try:
        first = client.submit(relay.url, prepared.key)
        if client.wait_terminal(relay.url, prepared.key, [first["id"]], 120).get(first["id"]) != "completed":
            raise RuntimeError(f"warm-up task did not complete; see {relay.log_path}")
    finally:
        relay.stop()
    template = seed.task_rows(data_dir, database_url, [first["id"]])[0]
    ids = [first["id"]]
    rng = random.Random(7)
    points: list[dict[str, Any]] = []
    memory: dict[str, int] = {}
    for size in opts.growth_sizes:
        need = size - seed.count_tasks(data_dir, database_url)
        added, seconds = seed.insert_copies(data_dir, database_url, template, need)
        ids += added
        print(f"[growth/{backend}] {size:>9,} tasks (inserted {need:,} in {seconds:.1f} s)", flush=True)
        bodies = tuple(orjson.dumps({"ids": rng.sample(ids, 100)}) for _ in range(ID_SETS))
        target = Target("POST", "/luma/tasks", auth, bodies)
        relay = servers.start_relay(env, logs, name=f"relay-growth-{backend}")
        try:
            started = time.perf_counter()
            check = client.call(relay.url, prepared.key, "POST", "/luma/tasks", bodies[0])
            cold_ms = (time.perf_counter() - started) * 1000
            if check.status_code != 200 or len(check.json()) != 100:
                raise RuntimeError(f"batch answered {check.status_code} with {len(check.content)} bytes")
            if opts.warmup_seconds > 0:
                load.run(relay.url, target, connections=1, seconds=opts.warmup_seconds)
            single = load.run(relay.url, target, connections=1, seconds=opts.seconds)
            # Under load only while one request is cheap: a queue of multi-second requests tells nothing new.
            loaded = (
                load.run(relay.url, target, connections=opts.connections, seconds=opts.seconds)
                if single.p50_ms < SLOW_MS
                else None
            )
            memory = relay.memory_kib()
        finally:
            relay.stop()
        bad = single.non_200 + single.errors + (loaded.non_200 + loaded.errors if loaded else 0)
        if database_url is None:
            plain = diagnose.sqlite_batch(data_dir, orjson.loads(bodies[0])["ids"])
            print(f"    the batch SQL alone: {plain['product_sql_ms']:.2f} ms ({plain['plan']})", flush=True)
        else:
            plain = {}
        point = {
            "tasks": size,
            "insert_seconds": round(seconds, 1),
            "store_bytes": _store_bytes(data_dir, database_url),
            "first_request_ms": round(cold_ms, 2),
            "c1": single.as_dict(),
            "loaded": loaded.as_dict() if loaded else None,
            "relay_memory_kib": memory,
            "store_sql": plain,
        }
        points.append(point)
        print(
            f"    1 connection: p50 {single.p50_ms:.2f} ms p99 {single.p99_ms:.2f} ms "
            f"({single.rps:.0f} req/s); "
            + (
                f"{opts.connections} connections: {loaded.rps:.0f} req/s p50 {loaded.p50_ms:.2f} ms; "
                if loaded
                else f"{opts.connections} connections: skipped (p50 over {SLOW_MS:g} ms); "
            )
            + f"non-200 {bad}; "
            f"RSS {memory.get('VmRSS', 0) / 1024:.0f} MiB",
            flush=True,
        )
    return {"backend": backend, "points": points, "rss_after_largest_kib": memory}


def run(opts: Options, load: LoadGenerator, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"sqlite": run_store(opts, load, work, "sqlite", None)}
    if not opts.growth_postgres:
        out["postgresql"] = {"skipped": "BENCH_GROWTH_POSTGRES=0"}
        return out
    database_url = seed.pg_create(opts.pg_admin)
    if database_url is None:
        note = f"PostgreSQL at {opts.pg_admin.rsplit('/', 1)[0]} is not reachable; skipped"
        print(f"[growth/postgresql] {note}", flush=True)
        out["postgresql"] = {"skipped": note}
        return out
    try:
        out["postgresql"] = run_store(opts, load, work, "postgresql", database_url)
    finally:
        seed.pg_drop(database_url, opts.pg_admin)
    return out
