"""Shared caches on PostgreSQL + Redis: what the per-request Redis generation check adds to
authentication, and whether a Redis cache of terminal task bodies would beat the batch query it would
replace. `python bench/caches.py` (needs the machine's PostgreSQL and Redis; about a minute).

In this process: mean time of `authenticate` with the in-process generation (one process), with the
Redis generation (every process), and of the key lookup it saves (the database query); mean time of
the batch read path (`reader()` + `get_bodies`) for 100 and 1000 ids beside a Redis MGET of the same
bodies (a lower bound for any Redis cache of them: it still has to check the owner and read misses).
Over HTTP: GET one task and POST /luma/tasks with 100 ids, with and without DREAMRELAY_REDIS_URL.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson
import redis

from bench import client, seed, servers
from bench.load import LoadGenerator, Target
from dreamrelay.key_cache import KeyCache
from dreamrelay.runtime import Runtime
from dreamrelay.services.auth import authenticate
from dreamrelay.settings import Settings
from dreamrelay.shared_state import LocalGenerations, RedisGenerations
from dreamrelay.store import accounts
from dreamrelay.store import tasks as task_store

REDIS_URL = "redis://127.0.0.1:6379/0"
TASKS = 10_000
HTTP_SECONDS = 3.0
HTTP_ROUNDS = 3
ROUND_SECONDS = 0.3
CONNECTIONS = 4


async def _median_us(cases: dict[str, Callable[[], Awaitable[Any]]], rounds: int = 7) -> dict[str, float]:
    """Median over `rounds` of each case's mean time; cases take turns, so a busy machine hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, work in cases.items():
            for _ in range(5):
                await work()
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < ROUND_SECONDS:
                await work()
                count += 1
            samples[name].append((time.perf_counter() - started) / count * 1e6)
    return {name: round(statistics.median(values), 1) for name, values in samples.items()}


async def in_process(settings: Settings, key: str, ids: list[str], account_id: int) -> dict[str, Any]:
    async with Runtime.from_settings(settings) as rt:
        assert rt.redis is not None
        redis_client = rt.redis
        header = f"Bearer {key}"
        local_cache = KeyCache(LocalGenerations())
        redis_cache = KeyCache(RedisGenerations(redis_client, settings.redis_prefix + "gen:"))

        async def auth_with(cache: KeyCache) -> None:
            rt.key_cache = cache
            await authenticate(rt, header)

        async def lookup() -> None:
            async with rt.db.reader() as conn:
                await accounts.find_key(conn, accounts.hash_key(key))

        cases: dict[str, Callable[[], Awaitable[Any]]] = {
            "auth_cached_local_generation_us": lambda: auth_with(local_cache),
            "auth_cached_redis_generation_us": lambda: auth_with(redis_cache),
            "key_lookup_in_database_us": lookup,
            "redis_ping_us": redis_client.ping,
        }
        rng = random.Random(3)
        cache_keys_all: list[str] = []
        for n in (1, 10, 100, 1000):
            wanted = rng.sample(ids, n)

            async def from_database(wanted: list[str] = wanted) -> bytes:
                async with rt.db.reader() as conn:
                    found = await task_store.get_bodies(conn, wanted, account_id)
                return b"[" + b",".join(found[i][0] for i in wanted if i in found) + b"]"

            bodies = orjson.loads(await from_database())
            cases[f"batch_{n}_database_us"] = from_database
            if n >= 100:
                cache_keys = [f"{settings.redis_prefix}body:{i}" for i in wanted]
                await redis_client.mset({k: orjson.dumps(v) for k, v in zip(cache_keys, bodies, strict=True)})
                cache_keys_all += cache_keys

                async def from_redis(cache_keys: list[str] = cache_keys) -> bytes:
                    found = await redis_client.mget(cache_keys)
                    return b"[" + b",".join(b for b in found if isinstance(b, bytes)) + b"]"

                cases[f"batch_{n}_redis_mget_us"] = from_redis
        out: dict[str, Any] = await _median_us(cases)
        out["task_body_bytes"] = len(orjson.dumps(bodies[0]))
        await redis_client.delete(*cache_keys_all)
    return out


def over_http(envs: dict[str, dict[str, str]], logs: Path, key: str, ids: list[str]) -> dict[str, Any]:
    """Each relay in turn, several rounds: median requests/s and server CPU ms per request."""
    load = LoadGenerator()
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = orjson.dumps({"ids": random.Random(5).sample(ids, 100)})
    targets = {
        "get_one": Target("GET", f"/luma/generations/{ids[0]}", auth),
        "batch_100": Target("POST", "/luma/tasks", auth, (body,)),
    }
    relays = {name: servers.start_relay(env, logs, name=f"relay-{name}") for name, env in envs.items()}
    samples: dict[str, list[tuple[float, float]]] = {}
    try:
        for _ in range(HTTP_ROUNDS):
            for relay_name, relay in relays.items():
                for target_name, target in targets.items():
                    cpu = relay.cpu_seconds()
                    result = load.run(relay.url, target, connections=CONNECTIONS, seconds=HTTP_SECONDS)
                    if result.non_200 or result.errors:
                        raise RuntimeError(f"{relay_name}: {result.non_200} not 200, {result.errors} errors")
                    cpu_ms = 1000 * (relay.cpu_seconds() - cpu) / max(result.requests, 1)
                    samples.setdefault(f"{relay_name} {target_name}", []).append((result.rps, cpu_ms))
    finally:
        for relay in relays.values():
            relay.stop()
    return {
        name: {
            "rps": round(statistics.median(r for r, _ in values), 1),
            "server_cpu_ms_per_request": round(statistics.median(c for _, c in values), 3),
        }
        for name, values in samples.items()
    } | {"tool": load.name}


def main() -> int:
    database_url = seed.pg_create()
    if database_url is None:
        print("bench/caches.py needs the PostgreSQL of this machine", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="dreamrelay-bench-caches-"))
    prefix = f"dreamrelay-bench:{uuid.uuid4().hex[:8]}:"
    try:
        data_dir, logs = work / "relay", work / "logs"
        prepared = seed.prepare_store(data_dir, database_url)
        env = servers.relay_env(data_dir, servers.free_port(), database_url=database_url)
        relay = servers.start_relay(env, logs, name="relay-warmup")
        try:
            first = client.submit(relay.url, prepared.key)
            if (
                client.wait_terminal(relay.url, prepared.key, [first["id"]], 120).get(first["id"])
                != "completed"
            ):
                raise RuntimeError(f"warm-up task did not complete; see {relay.log_path}")
        finally:
            relay.stop()
        template = seed.task_rows(data_dir, database_url, [first["id"]])[0]
        ids, _ = seed.insert_copies(data_dir, database_url, template, TASKS)

        settings = Settings(
            data_dir=data_dir, database_url=database_url, redis_url=REDIS_URL, redis_prefix=prefix
        )
        figures: dict[str, Any] = {"tasks": TASKS + 1}
        figures |= asyncio.run(in_process(settings, prepared.key, ids, prepared.account_id))
        with_redis = {
            **env,
            "DREAMRELAY_PORT": str(servers.free_port()),
            "DREAMRELAY_REDIS_URL": REDIS_URL,
            "DREAMRELAY_REDIS_PREFIX": prefix,
        }
        figures["http"] = over_http({"no-redis": env, "redis": with_redis}, logs, prepared.key, ids)
        print(
            json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in figures.items()}, indent=2)
        )
    finally:
        seed.pg_drop(database_url)
        shutil.rmtree(work, ignore_errors=True)
        leftovers = redis.Redis.from_url(REDIS_URL)
        for name in leftovers.scan_iter(match=prefix + "*"):
            leftovers.delete(name)
        leftovers.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
