"""`inflight`: reading a task still generating against reading a finished one, in the same run, and the
submit as the store fills (issue 32), on SQLite and PostgreSQL (BENCH_INFLIGHT_STORES).

One relay per store (API only, worker off: nothing moves the tasks), its upstream a separate sandbox that
keeps every task queued. Tasks are copies of a real row of each kind, bulk-inserted through the store
layer (bench/seed.py::insert_tasks over store/tasks.py::insert_tasks, which keeps each key's in-flight
number), so the relay meets each pending one first in the store, as a process started after they were
made does.

Stages (BENCH_INFLIGHT_STAGES, `tasks in store:of them in flight`, default 1,000:1,000,
100,000:100,000 and 1,000,000:100,000): at each, the submit (`POST /luma/generations`: relay CPU per
submit and p99, median of the rounds) and the own get of 1,000 pending tasks not read before against
1,000 finished ones (server CPU per request, alternated rounds, medians); at the first stage also the
official get and the 100-id batch (ten different bodies). No figure comes from reading one id again.
Each stage's pending tasks are first read once (100-id batches, as a first poll reads them from the
store); the figures are the polls after it.

The in-flight cap is out of reach by default (BENCH_INFLIGHT_CAP=1000000000): every submit checks the
key's in-flight number twice (admission and the hold); BENCH_INFLIGHT_CAP=0 turns the check off.
Last, the worker's CPU per poll (bench/worker_share.py, BENCH_WORKER_STORES; BENCH_WORKER_PARKED= skips it).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import client, seed, servers, worker_share
from bench.compare import Comparison, compare
from bench.load import LoadGenerator, Target
from bench.options import Options

TASKS = 1000
FEED_ROWS_PER_SECOND = 25_000  # about what a relay's feed reads while nothing else runs (SQLite or PG)
STORES = ("sqlite", "postgresql")


def _stages() -> list[tuple[int, int]]:
    raw = os.environ.get("BENCH_INFLIGHT_STAGES", "1000:1000,100000:100000,1000000:100000")
    stages = []
    for part in raw.split(","):
        if part.strip():
            total, _, flying = part.partition(":")
            stages.append((int(total), int(flying or total)))
    return stages


def run(opts: Options, load: LoadGenerator, work: Path) -> dict[str, Any]:
    wanted = os.environ.get("BENCH_INFLIGHT_STORES", ",".join(STORES)).split(",")
    out: dict[str, Any] = {}
    for store in STORES:
        if store not in wanted:
            continue
        database_url = None
        if store == "postgresql":
            database_url = seed.pg_create(opts.pg_admin)
            if database_url is None:
                print("[inflight/postgresql] skipped: PostgreSQL is not reachable", flush=True)
                continue
        try:
            out[store] = _one_store(opts, load, work / f"inflight-{store}", database_url, store)
        finally:
            if database_url:
                seed.pg_drop(database_url, opts.pg_admin)
    if os.environ.get("BENCH_WORKER_PARKED", "1000,100000"):
        print("[inflight] the worker's CPU per poll as the tasks in flight grow", flush=True)
        out["worker"] = worker_share.run(opts, work)
    return out


def _one_store(
    opts: Options, load: LoadGenerator, data_dir: Path, database_url: str | None, store: str
) -> dict[str, Any]:
    logs = data_dir.parent / "logs"
    key = seed.prepare_store(data_dir, database_url).key
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    fast = servers.start_sandbox(data_dir.parent / f"sandbox-{store}-fast", 0.0, 0.0, logs)
    held = servers.start_sandbox(data_dir.parent / f"sandbox-{store}-held", 86400.0, 0.0, logs)
    extra = {"database_url": database_url} if database_url else {}
    out: dict[str, Any] = {"stages": []}
    try:
        warm = servers.start_relay(
            servers.relay_env(
                data_dir, servers.free_port(), sandbox_url=fast.url + "/dream-machine/v1", **extra
            ),
            logs,
            name=f"relay-inflight-{store}-warm",
        )
        try:
            first = client.submit(warm.url, key)
            if (
                client.wait_terminal(warm.url, key, [first["id"]], timeout=120).get(first["id"])
                != "completed"
            ):
                raise RuntimeError(f"warm-up task did not complete; see {warm.log_path}")
        finally:
            warm.stop()
        env = servers.relay_env(
            data_dir,
            servers.free_port(),
            sandbox_url=held.url + "/dream-machine/v1",
            worker_enabled="false",
            rate_limit_in_flight=os.environ.get("BENCH_INFLIGHT_CAP", "1000000000"),
            **extra,
        )
        relay = servers.start_relay(env, logs, name=f"relay-inflight-{store}")
        try:
            pending = client.submit(relay.url, key)
            done = seed.read_task(data_dir, database_url, first["id"])
            flying = seed.read_task(data_dir, database_url, pending["id"])
            finished_ids = [done.id, *seed.insert_tasks(data_dir, database_url, done, TASKS - 1)[0]]
            for n, (total, in_flight) in enumerate(_stages()):
                have_total, have_flying = seed.store_counts(data_dir, database_url)
                new_pending, took = seed.insert_tasks(
                    data_dir, database_url, flying, max(TASKS, in_flight - have_flying)
                )
                more_done = max(0, total - have_total - len(new_pending))
                took += seed.insert_tasks(data_dir, database_url, done, more_done)[1]
                have_total, have_flying = seed.store_counts(data_dir, database_url)
                print(
                    f"[inflight/{store}] {have_total:,} tasks, {have_flying:,} in flight "
                    f"(seeded in {took:.1f} s)",
                    flush=True,
                )
                # The relay's in-flight feed reads every seeded row (a page at a time); until it is
                # through, its mirror is not current and reads go to the store. A real relay never
                # sees 900,000 writes at once: the figures are of the state after it.
                seeded = len(new_pending) + more_done
                time.sleep(min(90.0, 2.0 + seeded / FEED_ROWS_PER_SECOND))
                _prime(relay.url, auth, new_pending[:TASKS])
                stage: dict[str, Any] = {
                    "tasks": have_total,
                    "in_flight": have_flying,
                    "seed_seconds": took,
                    "reads": _reads(opts, load, relay, auth, finished_ids, new_pending[:TASKS], full=n == 0),
                    "submit": _submits(opts, load, relay, auth),
                }
                stage["tasks_after"], stage["in_flight_after"] = seed.store_counts(data_dir, database_url)
                out["stages"].append(stage)
        finally:
            relay.stop()
    finally:
        fast.stop()
        held.stop()
    return out


def _prime(url: str, auth: dict[str, str], ids: list[str]) -> None:
    """Read each pending task once (100-id batches), as its first poll does: the relay then holds it in
    its mirror, where a customer's later polls find it. What is measured is those later polls."""
    with httpx.Client(base_url=url, headers=auth, timeout=120) as http:
        for n in range(0, len(ids), 100):
            http.post("/luma/tasks", content=orjson.dumps({"ids": ids[n : n + 100]})).raise_for_status()


def _reads(
    opts: Options,
    load: LoadGenerator,
    relay: servers.Process,
    auth: dict[str, str],
    finished: list[str],
    pending: list[str],
    *,
    full: bool,
) -> list[dict[str, Any]]:
    def gets(prefix: str, ids: list[str]) -> Target:
        paths = tuple(prefix + i for i in ids)
        return Target("GET", paths[0], auth, paths=paths)

    def batches(ids: list[str]) -> Target:
        bodies = tuple(orjson.dumps({"ids": ids[n : n + 100]}) for n in range(0, len(ids), 100))
        return Target("POST", "/luma/tasks", auth, bodies)

    cases = [
        (
            "own get GET /luma/generations/{id}",
            gets("/luma/generations/", pending),
            gets("/luma/generations/", finished),
        )
    ]
    if full:
        cases += [
            (
                "official get GET /dream-machine/v1/generations/{id}",
                gets("/dream-machine/v1/generations/", pending),
                gets("/dream-machine/v1/generations/", finished),
            ),
            ("batch POST /luma/tasks, 100 ids", batches(pending), batches(finished)),
        ]
    rows: list[dict[str, Any]] = []
    for name, candidate, baseline in cases:
        if not opts.wants(name):
            continue
        result: Comparison = compare(
            name,
            load,
            opts,
            candidate_server=relay,
            candidate=candidate,
            baseline_server=relay,
            baseline=baseline,
            response_bytes=0,
            note="candidate: 1,000 pending tasks; baseline: 1,000 finished ones, same relay",
        )
        pending_ms, finished_ms = result.candidate.cpu_ms_median, result.baseline.cpu_ms_median
        ratio = pending_ms / finished_ms if finished_ms else 0.0
        print(
            f"  {name}: pending {pending_ms:.3f} ms, finished {finished_ms:.3f} ms, pending ÷ finished "
            f"{ratio:.2f} (non-200: {result.candidate.non_200} / {result.baseline.non_200})",
            flush=True,
        )
        rows.append(
            {**result.as_dict(), "pending_ms": pending_ms, "finished_ms": finished_ms, "ratio": ratio}
        )
    return rows


def _submits(
    opts: Options, load: LoadGenerator, relay: servers.Process, auth: dict[str, str]
) -> dict[str, Any]:
    """Relay CPU per submit and p99, medians of the rounds."""
    target = Target("POST", "/luma/generations", auth, (client.SUBMIT_BODY,))
    load.run(relay.url, target, connections=opts.connections, seconds=opts.warmup_seconds)
    cpu, p99, rps, refused = [], [], [], 0
    for _ in range(opts.rounds):
        before = relay.cpu_seconds()
        result = load.run(relay.url, target, connections=opts.connections, seconds=opts.seconds)
        used = relay.cpu_seconds() - before
        cpu.append(1000 * used / max(result.requests, 1))
        p99.append(result.p99_ms)
        rps.append(result.requests / result.seconds)
        refused += result.non_200
    load_now = os.getloadavg()[0]
    row: dict[str, Any] = {
        "cpu_ms": statistics.median(cpu),
        "p99_ms": statistics.median(p99),
        "rps": statistics.median(rps),
        "rounds_cpu_ms": cpu,
        "rounds_p99_ms": p99,
        "non_200": refused,
        "load_average": load_now,
    }
    print(
        f"  submit: CPU {row['cpu_ms']:.3f} ms, p99 {row['p99_ms']:.1f} ms, {row['rps']:.0f}/s "
        f"(rounds CPU {[round(c, 3) for c in cpu]}, p99 {[round(p, 1) for p in p99]}; non-200 {refused}; "
        f"load {load_now:.1f})",
        flush=True,
    )
    return row
