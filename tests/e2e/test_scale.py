"""Many processes on PostgreSQL and Redis: nothing lost, nothing doubled, nothing left leased."""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from dreamrelay.runtime import Runtime
from dreamrelay.settings import Settings
from dreamrelay.store import tasks as task_store
from dreamrelay.store.schema import ledger, outbox, tasks
from dreamrelay.worker.leases import LeaseKeeper
from tests.conftest import Relay, make_settings, start_relay
from tests.support.processes import (
    NO_CALLBACK,
    SCRIPT,
    Process,
    environment,
    recorded_sandbox,
    stopped_at_exit,
    wait_healthy,
)
from tests.support.receiver import running_receiver
from tests.support.services import REDIS_URL

SOAK_TASKS = 300
SOAK_WORKERS = 3
SOAK_KILLS = 8
PRICE_540P_5S = 50


def scale_settings(data_dir: Path, database_url: str, sandbox_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "sandbox_url": sandbox_url,
        "sandbox_key": "sandbox-local-key",  # the recorded sandbox's key
        "allow_private_urls": "127.0.0.0/8",
        "admin_token": "scale-test-admin-token",
        "rate_limit_rpm": 1_000_000,
        "rate_limit_batch_rpm": 1_000_000,
        "rate_limit_in_flight": 100_000,
        "poll_error_base_seconds": 0.2,
        "callback_retry_base_seconds": 0.2,
        "callback_timeout_seconds": 2.0,
        "task_deadline_seconds": 600.0,
        "upstream_timeout_seconds": 120.0,  # the in-test sandbox shares a loaded machine
    }
    values.update(overrides)
    return make_settings(data_dir, **values)


def rows(settings: Settings, query: Any) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        async with Runtime.from_settings(settings) as rt, rt.db.reader() as conn:
            return [dict(r._mapping) for r in await conn.execute(query)]

    return asyncio.run(read())


def states(url: str, key: str, ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for start in range(0, len(ids), 100):
            answer = client.post("/luma/tasks", json={"ids": ids[start : start + 100]})
            assert answer.status_code == 200, answer.text
            found.update({t["id"]: t["state"] for t in answer.json()})
    return found


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.5)


def submit_all(url: str, key: str, prompts: list[str], hook: str) -> list[str]:
    async def run() -> list[str]:
        limit = asyncio.Semaphore(12)
        # A new connection per request, so the kernel spreads them over both API processes.
        async with httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as client:

            async def one(prompt: str) -> str:
                async with limit:
                    answer = await client.post(
                        "/luma/generations",
                        json={"user_prompt": prompt, "resolution": "540p", "notify_hook": hook},
                    )
                assert answer.status_code == 200, answer.text
                return str(answer.json()["id"])

            return list(await asyncio.gather(*(one(p) for p in prompts)))

    return asyncio.run(run())


def metric_total(text: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@pytest.mark.heavy(seconds=40)
def test_soak_two_api_processes_three_workers_killed_at_random(
    tmp_path: Path, pg_url: str, redis_ns: str
) -> None:
    rng = random.Random(7)
    with (
        # Generations last 6 s or more, so they are still in flight when the first kills land and the
        # replacement workers have polls to take over (at 0.6 s a quiet machine finished them all first).
        recorded_sandbox(
            tmp_path / "upstream", "sandbox-local-key", queued_seconds=0.2, dreaming_seconds=6.0
        ) as (sandbox_url, recorder),
        running_receiver() as receiver,
    ):
        # Each poll lasts at least 50 ms: two processes polling one generation in the same round
        # (a lease taken twice) could not slip between each other unseen.
        recorder.poll_delay = 0.05
        settings = scale_settings(
            tmp_path / "relay",
            pg_url,
            sandbox_url,
            redis_url=REDIS_URL,
            redis_prefix=redis_ns,
            lease_seconds=4.0,
            shutdown_grace_seconds=5.0,
            database_connections=8,  # five processes and their replacements on the machine's server
        )
        env = environment(settings)
        logs = tmp_path / "logs"
        logs.mkdir()
        api = Process(("serve", "--workers", "2", "--no-worker"), env, logs / "api.log")
        workers = [Process(("worker",), env, logs / f"worker-{i}.log") for i in range(SOAK_WORKERS)]
        with stopped_at_exit([api]):
            api.start()
            url = f"http://127.0.0.1:{settings.port}"
            wait_healthy(url, api)
            key = Relay(url=url, settings=settings, key="").new_key("soak", balance=10**9)
            live = [w.start() for w in workers]
            spawned: list[Process] = list(live)

            prompts = [
                ("[sandbox:fail] soak" if i % 4 == 0 else "soak") + (f" {NO_CALLBACK}" if i % 2 else "")
                for i in range(SOAK_TASKS)
            ]
            ids = submit_all(url, key, prompts, f"{receiver.url}/hook")
            expected = {
                task_id: "failed" if "[sandbox:fail]" in prompt else "completed"
                for task_id, prompt in zip(ids, prompts, strict=True)
            }

            stop_chaos = threading.Event()
            kills: list[int] = []

            def chaos() -> None:
                while not stop_chaos.wait(rng.uniform(1.0, 3.0)) and len(kills) < SOAK_KILLS:
                    slot = rng.randrange(len(live))
                    live[slot].kill()
                    kills.append(live[slot].pid)
                    live[slot] = Process(("worker",), env, logs / f"worker-{slot}-{len(kills)}.log").start()
                    spawned.append(live[slot])

            killer = threading.Thread(target=chaos, name="chaos")
            with stopped_at_exit(spawned):
                killer.start()
                try:
                    wait_until(
                        lambda: set(states(url, key, ids).values()) <= {"completed", "failed"},
                        240,
                        "every task terminal",
                    )
                finally:
                    stop_chaos.set()
                    killer.join()
                try:
                    wait_until(
                        lambda: not rows(settings, select(outbox.c.id).where(outbox.c.status == "pending")),
                        120,
                        "every callback event delivered",
                    )
                    metrics_text = httpx.get(f"{url}/metrics", timeout=10).text
                finally:
                    for worker in live:
                        wait_until(lambda w=worker: "started" in w.log(), 60, "the worker to be up")
                exit_codes = [w.terminate() for w in live]
            assert exit_codes == [0] * SOAK_WORKERS, [w.log()[-2000:] for w in live]
            assert api.terminate() == 0, api.log()[-2000:]

    assert len(kills) >= 3, "the chaos thread should have killed workers several times"
    # Every task ended as its prompt said, each hold settled exactly once, nothing is still leased.
    assert states_after(settings) == expected
    by_task: dict[str, list[str]] = {}
    for row in rows(settings, select(ledger.c.task_id, ledger.c.kind).order_by(ledger.c.id)):
        by_task.setdefault(row["task_id"], []).append(row["kind"])
    for task_id, state in expected.items():
        assert by_task[task_id] == ["hold", "capture" if state == "completed" else "release"], task_id
    leased = rows(settings, select(tasks.c.id).where(tasks.c.lease_owner.is_not(None)))
    leased += rows(settings, select(outbox.c.id).where(outbox.c.lease_owner.is_not(None)))
    assert leased == []
    verify = subprocess.run(
        [str(SCRIPT), "ledger", "verify"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # Every callback event was delivered at least once (kills may deliver one twice).
    events = rows(settings, select(outbox.c.message_id, outbox.c.status, outbox.c.task_id))
    assert {e["status"] for e in events} == {"delivered"}
    assert Counter(e["task_id"] for e in events).keys() == set(ids)
    assert {e["message_id"] for e in events} <= {r.headers["webhook-id"] for r in receiver.delivered()}

    # Both API processes took submissions; workers started after a kill took over polling; no generation
    # was polled by two processes at once.
    assert len(recorder.submitters) == 2
    replacements = {m for w in spawned[SOAK_WORKERS:] for m in re.findall(r"worker (\w+) started", w.log())}
    assert {p.poller for p in recorder.polls} & replacements
    assert recorder.overlaps() == []

    # /metrics sums every process: both API processes' submits, and the workers' leases.
    submits = metric_total(
        metrics_text, "dreamrelay_http_requests_total", route="/luma/generations", status="200"
    )
    assert submits == SOAK_TASKS
    assert metric_total(metrics_text, "dreamrelay_leased_total", kind="tasks") > 0


def states_after(settings: Settings) -> dict[str, str]:
    return {r["id"]: r["state"] for r in rows(settings, select(tasks.c.id, tasks.c.state))}


def test_sigterm_hands_back_every_lease_at_once(tmp_path: Path, pg_url: str) -> None:
    with recorded_sandbox(
        tmp_path / "upstream", "sandbox-local-key", queued_seconds=0.1, dreaming_seconds=0.3
    ) as (sandbox_url, recorder):
        # Every poll is still in hand when the worker is told to stop, however slow the machine (at
        # 4 s, a loaded machine let the polls end first); they are let go below.
        recorder.poll_delay = 120.0
        # Leases last a minute: only a hand-back lets the second worker finish these tasks in time.
        settings = scale_settings(
            tmp_path,
            pg_url,
            sandbox_url,
            worker_enabled=False,
            lease_seconds=60.0,
            shutdown_grace_seconds=0.5,
        )
        with start_relay(settings) as relay, relay.client() as client:
            ids = [
                client.post(
                    "/luma/generations", json={"user_prompt": f"slow {i} {NO_CALLBACK}", "resolution": "540p"}
                ).json()["id"]
                for i in range(4)
            ]
            env = environment(settings)
            first = Process(("worker",), env, tmp_path / "worker-1.log")
            with stopped_at_exit([first]):
                first.start()
                wait_until(
                    lambda: (
                        len(rows(settings, select(tasks.c.id).where(tasks.c.lease_owner.is_not(None))))
                        == len(ids)
                    ),
                    60,
                    "the worker holds every task",
                )
                assert first.terminate(timeout=30) == 0, first.log()
            assert "handed back 4 lease(s) of tasks" in first.log()
            leased = rows(settings, select(tasks.c.id, tasks.c.state).where(tasks.c.lease_owner.is_not(None)))
            assert leased == []
            assert set(states(relay.url, relay.key, ids).values()) <= {"pending", "processing"}

            recorder.poll_delay = 0.0
            second = Process(("worker",), env, tmp_path / "worker-2.log")
            with stopped_at_exit([second]):
                second.start()
                wait_until(
                    lambda: set(states(relay.url, relay.key, ids).values()) == {"completed"},
                    120,
                    "the second worker finishes what the first handed back",
                )
                assert second.terminate() == 0


def test_heartbeats_extend_only_the_leases_still_in_hand(tmp_path: Path, pg_url: str) -> None:
    settings = make_settings(tmp_path, database_url=pg_url, worker_enabled=False, lease_seconds=30.0)
    with start_relay(settings) as relay, relay.client() as client:
        ids = [
            client.post("/luma/generations", json={"user_prompt": f"{i} [sandbox:stall]"}).json()["id"]
            for i in range(3)
        ]

    def lease_untils(rt: Runtime) -> Any:
        async def read() -> dict[str, Any]:
            async with rt.db.reader() as conn:
                found = await conn.execute(select(tasks.c.id, tasks.c.lease_owner, tasks.c.lease_until))
                return {r.id: (r.lease_owner, r.lease_until) for r in found}

        return read()

    async def play() -> None:
        async with Runtime.from_settings(settings) as rt:
            far = time.time() + 3600  # as if an hour had passed: every task is due, none leased
            async with rt.db.transaction() as conn:
                leased = await task_store.lease_due(
                    conn, owner="w1", now=far, limit=10, lease_seconds=30, skip_locked=True
                )
            assert sorted(t.id for t in leased) == sorted(ids)
            keeper = LeaseKeeper(rt, tasks, "w1")
            keeper.hold(ids)
            keeper.drop(ids[2:])  # its job ended: no more heartbeats for it
            assert await keeper.beat() == 2
            after = await lease_untils(rt)
            assert all(after[i][1] < far for i in ids[:2])  # pushed to now + 30 s
            assert after[ids[2]][1] == far + 30  # left to expire
            # Another owner's heartbeat for the same ids extends nothing.
            stranger = LeaseKeeper(rt, tasks, "w2")
            stranger.hold(ids)
            assert await stranger.beat() == 0
            assert await keeper.release_all() == 3
            assert {v for v in (await lease_untils(rt)).values()} == {(None, None)}

    asyncio.run(play())


def test_metrics_of_a_single_process(relay: Relay) -> None:
    assert httpx.get(f"{relay.url}/healthz", timeout=10).status_code == 200
    answer = httpx.get(f"{relay.url}/metrics", timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    assert metric_total(answer.text, "dreamrelay_http_requests_total", route="/healthz", status="200") >= 1
