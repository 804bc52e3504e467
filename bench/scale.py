"""Scale-out figures on PostgreSQL, as ratios measured in one run on this machine:

1. requests/s of `POST /luma/tasks` (100 ids) with 1 and with 2 API processes
   (`dreamrelay serve --workers N --no-worker`, wrk or the Python load generator);
2. completed tasks/s with 1 and with 3 `dreamrelay worker` processes.

For (2) the tasks must be moved by polls, not by the sandbox calling back: the API that submits them
gets a public URL nobody listens on, so the upstream callbacks go nowhere. Once submitted, the API
stops, the workers start and report ready, and one UPDATE makes every task due at once; the clock
runs from then until the last task is completed (download, probe, thumbnails, store: real work).

    .venv/bin/python -m bench.scale            # BENCH_SCALE_SECONDS=8 BENCH_SCALE_TASKS=150

Read the ratios against the cores: on a 2-core machine wrk, PostgreSQL and one API process already
share both cores, and one worker's media copies (two at a time, in threads) already fill them, so
more processes cannot go faster there; the ratios mean something on a machine with cores to spare.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import orjson

from bench import client, seed, servers
from bench.load import LoadGenerator, Target

SECONDS = float(os.environ.get("BENCH_SCALE_SECONDS", "8"))
TASKS = int(os.environ.get("BENCH_SCALE_TASKS", "150"))
CONNECTIONS = 32
NOBODY = "http://127.0.0.1:9"  # the discard port: upstream callbacks sent there are lost


def _serve(env: dict[str, str], log_dir: Path, processes: int, name: str) -> servers.Process:
    url = f"http://{servers.HOST}:{env['DREAMRELAY_PORT']}"
    argv = [*_dreamrelay(), "serve", "--workers", str(processes), "--no-worker"]
    process = servers._spawn(name, argv, env, log_dir, url)
    servers.wait_http(process, "/readyz")
    return process


def _env(data_dir: Path, database_url: str, sandbox: servers.Process, **settings: str) -> dict[str, str]:
    sandbox_url = f"{sandbox.url}/dream-machine/v1"
    return servers.relay_env(
        data_dir,
        servers.free_port(),
        database_url=database_url,
        sandbox_url=sandbox_url,
        sandbox_key=servers.SANDBOX_KEY,
        **settings,
    )


def _dreamrelay() -> list[str]:
    return [sys.executable, "-m", "dreamrelay"]


def api_figures(work: Path, load: LoadGenerator, sandbox: servers.Process) -> dict[str, float]:
    """Batch reads of 100 ids per second with 1 and 2 API processes on one PostgreSQL."""
    database_url = seed.pg_create()
    if database_url is None:
        raise SystemExit("PostgreSQL at 127.0.0.1:5432 is needed")
    try:
        data_dir = work / "api"
        prepared = seed.prepare_store(data_dir, database_url)
        env = _env(data_dir, database_url, sandbox)
        relay = _serve(env, work / "logs", 1, "api-seed")
        task = client.submit(relay.url, prepared.key)
        client.wait_terminal(relay.url, prepared.key, [task["id"]], timeout=60)
        relay.stop()
        template = seed.task_rows(data_dir, database_url, [task["id"]])[0]
        ids, _took = seed.insert_copies(data_dir, database_url, template, 99)
        body = orjson.dumps({"ids": [task["id"], *ids]})
        target = Target("POST", "/luma/tasks", client.headers(prepared.key), (body,))
        figures: dict[str, float] = {}
        for processes in (1, 2):
            relay = _serve(env, work / "logs", processes, f"api-{processes}")
            try:
                load.run(relay.url, target, connections=CONNECTIONS, seconds=1.0)  # warm every process
                result = load.run(relay.url, target, connections=CONNECTIONS, seconds=SECONDS)
            finally:
                relay.stop()
            if result.non_200 or result.errors:
                failed = f"{result.non_200} non-200, {result.errors} errors"
                raise RuntimeError(f"{processes} API process(es): {failed}")
            figures[f"batch100_rps_{processes}_api"] = round(result.rps, 1)
        return figures
    finally:
        seed.pg_drop(database_url)


async def _submit(url: str, key: str, count: int) -> list[str]:
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=url, headers=client.headers(key), timeout=60) as http:

        async def one() -> str:
            async with limit:
                answer = await http.post("/luma/generations", content=client.SUBMIT_BODY)
            answer.raise_for_status()
            return str(answer.json()["id"])

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def _make_due(database_url: str) -> float:
    conn = await asyncpg.connect(seed.pg_dsn(database_url))
    try:
        await conn.execute("UPDATE tasks SET next_poll_at = $1 WHERE finished_at IS NULL", time.time())
    finally:
        await conn.close()
    return time.monotonic()


async def _completed(database_url: str) -> int:
    conn = await asyncpg.connect(seed.pg_dsn(database_url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM tasks WHERE state = 'completed'"))
    finally:
        await conn.close()


def worker_figure(work: Path, sandbox: servers.Process, workers: int) -> float:
    """Completed tasks per second with `workers` worker processes following TASKS due tasks."""
    database_url = seed.pg_create()
    assert database_url is not None
    procs: list[servers.Process] = []
    try:
        data_dir = work / f"workers-{workers}"
        prepared = seed.prepare_store(data_dir, database_url)
        env = _env(data_dir, database_url, sandbox, public_url=NOBODY)
        relay = _serve(env, work / "logs", 1, f"submit-{workers}")
        try:
            asyncio.run(_submit(relay.url, prepared.key, TASKS))
        finally:
            relay.stop()
        for i in range(workers):
            argv = [*_dreamrelay(), "worker"]
            procs.append(servers._spawn(f"worker-{workers}-{i}", argv, env, work / "logs", relay.url))
        deadline = time.monotonic() + 60
        while not all("started" in p.log_tail(200) for p in procs):
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start:\n" + procs[0].log_tail())
            time.sleep(0.1)
        started = asyncio.run(_make_due(database_url))
        while asyncio.run(_completed(database_url)) < TASKS:
            if time.monotonic() - started > 120:
                raise RuntimeError(f"{workers} worker(s) did not complete {TASKS} tasks in 120 s")
            time.sleep(0.1)
        return TASKS / (time.monotonic() - started)
    finally:
        for process in procs:
            process.stop()
        seed.pg_drop(database_url)


def main() -> None:
    load = LoadGenerator()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="dreamrelay-bench-scale-") as tmp:
        work = Path(tmp)
        sandbox = servers.start_sandbox(work / "sandbox", 0.0, 0.0, work / "logs")
        try:
            api = api_figures(work, load, sandbox)
            one = worker_figure(work, sandbox, 1)
            three = worker_figure(work, sandbox, 3)
        finally:
            sandbox.stop()
    load_after = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load_before:.1f} before, {load_after:.1f} after")
    print(f"load generator: {load.name}, {CONNECTIONS} connections, {SECONDS:.0f} s per run")
    print(f"POST /luma/tasks (100 ids), 1 API process : {api['batch100_rps_1_api']:>8.1f} req/s")
    print(f"POST /luma/tasks (100 ids), 2 API processes: {api['batch100_rps_2_api']:>8.1f} req/s")
    print(f"  ratio 2/1: {api['batch100_rps_2_api'] / api['batch100_rps_1_api']:.2f}")
    print(f"completed tasks/s, 1 worker : {one:>6.1f}   ({TASKS} tasks)")
    print(f"completed tasks/s, 3 workers: {three:>6.1f}")
    print(f"  ratio 3/1: {three / one:.2f}")


if __name__ == "__main__":
    main()
