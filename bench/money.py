"""Issue 3's figures: submit throughput with billing and limits on versus off, and one rate-limit check.

(a) Three relays, each with its own store, same settings otherwise (worker off, the in-process sandbox
keeps every task queued, so only the submit path is measured; see the api section's "submit only").
ON: every price as seeded (a hold and its ledger row per task), the per-minute bucket asked on every
request and the in-flight count queried on every submit, with limits so high that nothing is refused.
OFF: every price 0 (no hold, no ledger row) and the three limits 0 (= no limit: no bucket, no count).
"limits only": prices 0, limits as ON — splits the cost between billing and limits.
Alternated rounds against OFF, the same load; the ratio is ON / OFF (and limits only / OFF).

(b) MemoryRateLimiter.hit and RedisRateLimiter.hit called directly in this process, each call timed
on its own; beside them what the timing costs for an empty coroutine and a Redis PING on the same
connection kind (the floor of any Redis round trip).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from bench import client, seed, servers
from bench.compare import compare
from bench.load import LoadGenerator, Target
from bench.options import Options
from bench.stats import spread
from dreamrelay.ratelimit import MemoryRateLimiter, RedisRateLimiter
from dreamrelay.shared_state import connect_redis

REDIS_URL = "redis://127.0.0.1:6379/0"
LIMIT = 10**9  # high enough that no check ever refuses


def _store_counts(data_dir: Path) -> dict[str, int]:
    conn = sqlite3.connect(seed.sqlite_path(data_dir))
    try:
        holds = conn.execute("SELECT count(*) FROM ledger WHERE kind = 'hold'").fetchone()[0]
        tasks = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
        priced = conn.execute("SELECT count(*) FROM prices WHERE credits > 0").fetchone()[0]
    finally:
        conn.close()
    return {"tasks": int(tasks), "hold_rows": int(holds), "prices_above_0": int(priced)}


def _free_of_charge(data_dir: Path) -> None:
    """Billing off: every price rule 0, written straight into the stopped relay's store."""
    conn = sqlite3.connect(seed.sqlite_path(data_dir))
    try:
        conn.execute("UPDATE prices SET credits = 0")
        conn.commit()
    finally:
        conn.close()


NO_LIMITS = {"rate_limit_rpm": "0", "rate_limit_batch_rpm": "0", "rate_limit_in_flight": "0"}
# side → (billing on?, limits on?)
SIDES = {"on": (True, True), "limits only": (False, True), "off": (False, False)}


def submit_on_off(opts: Options, load: LoadGenerator, work: Path) -> dict[str, Any]:
    """ON and "limits only" (price 0, limits on) each against OFF, alternated rounds."""
    logs = work / "logs"
    common = {"worker_enabled": "false", "sandbox_queued_seconds": "86400"}
    relays: dict[str, servers.Process] = {}
    targets: dict[str, Target] = {}
    dirs = {side: work / f"money-{side.replace(' ', '-')}" for side in SIDES}
    out: dict[str, Any] = {}
    try:
        for side, (billing, limits) in SIDES.items():
            key = seed.prepare_store(dirs[side]).key
            if not billing:
                _free_of_charge(dirs[side])
            settings = common if limits else common | NO_LIMITS
            env = servers.relay_env(dirs[side], servers.free_port(), **settings)
            relays[side] = servers.start_relay(env, logs, name=f"relay-money-{side.replace(' ', '-')}")
            targets[side] = Target("POST", "/luma/generations", client.headers(key), (client.SUBMIT_BODY,))

        def all_idle() -> float:
            return sum(relay.wait_idle() for relay in relays.values())

        for side in ("on", "limits only"):
            out[side] = compare(
                f"submit, {side} vs off",
                load,
                opts,
                candidate_server=relays[side],
                candidate=targets[side],
                baseline_server=relays["off"],
                baseline=targets["off"],
                response_bytes=0,
                note=f"ratio = {side} / off",
                between=all_idle,
            ).as_dict()
    finally:
        for relay in relays.values():
            relay.stop()
    out["stores"] = {side: _store_counts(dirs[side]) for side in SIDES}
    return out


async def _timed(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    """Each call timed on its own, in seconds, after 1,000 unrecorded ones."""
    for _ in range(1000):
        await call()
    samples = []
    for _ in range(count):
        started = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - started) / 1e9)
    return samples


async def _check_costs(count: int) -> dict[str, Any]:
    async def nothing() -> None:
        return None

    memory = MemoryRateLimiter()
    out: dict[str, Any] = {
        "calls": count,
        "empty coroutine (timing floor)": spread(await _timed(nothing, count), 1e6, 2),
        "MemoryRateLimiter.hit": spread(await _timed(lambda: memory.hit("bench:rpm", LIMIT), count), 1e6, 2),
    }
    prefix = f"dreamrelay-bench-{uuid.uuid4().hex[:8]}:"
    ping = connect_redis(REDIS_URL)
    shared = RedisRateLimiter(ping, prefix)
    try:
        await ping.ping()
        out["Redis PING (round-trip floor)"] = spread(await _timed(ping.ping, count), 1e6, 2)
        out["RedisRateLimiter.hit"] = spread(
            await _timed(lambda: shared.hit("bench:rpm", LIMIT), count), 1e6, 2
        )
        await ping.delete(f"{prefix}bench:rpm")
    except (RedisError, OSError) as exc:
        out["redis_skipped"] = f"Redis at {REDIS_URL} unreachable: {exc}"
    finally:
        await ping.aclose()
    return out


def run(opts: Options, load: LoadGenerator, work: Path) -> dict[str, Any]:
    submit = submit_on_off(opts, load, work)
    print(f"  rate-limit check, {opts.limit_calls:,} calls each …", flush=True)
    checks = asyncio.run(_check_costs(opts.limit_calls))
    for name, figure in checks.items():
        if isinstance(figure, dict):
            print(f"  {name:<32} median {figure['median']:.2f} µs, p99 {figure['p99']:.2f} µs", flush=True)
    return {"submit": submit, "rate_limit_check_us": checks}
