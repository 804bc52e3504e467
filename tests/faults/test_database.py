"""Fault 1: the database goes away under load and comes back.

PostgreSQL: a private cluster (never the machine's own) restarted with pg_ctl while 200 submits and their
polls run against `dreamrelay serve --no-worker` and a `dreamrelay worker`. SQLite has no server to
restart; its analogue is another process holding the write lock longer than the busy timeout.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from dreamrelay.store import engine
from tests.conftest import Relay, make_settings, start_relay
from tests.faults.harness import (
    SANDBOX_KEY,
    Load,
    alive,
    all_terminal,
    callbacks_delivered,
    in_flight,
    ledger_verifies,
    money_settled_once,
    relay_settings,
    states,
    unavailable_shape,
    wait_until,
)
from tests.support.private_servers import private_postgres
from tests.support.processes import Process, environment, recorded_sandbox, stopped_at_exit, wait_healthy
from tests.support.receiver import running_receiver


@pytest.mark.postgres
@pytest.mark.heavy(seconds=30)
def test_postgres_restart_under_load(tmp_path: Path) -> None:
    with (
        private_postgres() as pg,
        recorded_sandbox(tmp_path / "upstream", SANDBOX_KEY, queued_seconds=0.2, dreaming_seconds=1.0) as (
            sandbox_url,
            _recorder,
        ),
        running_receiver() as receiver,
    ):
        # The cluster is this test's own: each process may open the default 20 connections.
        settings = relay_settings(tmp_path / "relay", pg.url, sandbox_url, database_connections=20)
        env = environment(settings)
        api = Process(("serve", "--no-worker"), env, tmp_path / "api.log")
        worker = Process(("worker",), env, tmp_path / "worker.log")
        late = Process(("worker",), env, tmp_path / "late-worker.log")  # starts while the database is down
        with stopped_at_exit([api, worker, late]):
            api.start()
            url = f"http://127.0.0.1:{settings.port}"
            wait_healthy(url, api)
            key = Relay(url=url, settings=settings, key="").new_key("faults", balance=10**9)
            worker.start()
            load = Load(url, key, hook=f"{receiver.url}/hook").start()
            wait_until(lambda: load.accepted_count() >= 50, 60, "a quarter of the submits accepted")
            pg.stop()
            down_at = time.monotonic()
            late.start()
            wait_until(lambda: len(load.errors()) >= 20, 30, "submits and polls meet the outage")
            time.sleep(max(0.0, 2.0 - (time.monotonic() - down_at)))
            pg.start()
            up_at = time.time()
            load.join()
            ids = list(load.accepted)
            wait_until(
                lambda: alive(api, worker, late) and all_terminal(url, key, ids),
                120,
                "every task terminal",
                lambda: _stuck(settings, key, ids, api),
            )
            # Recovered without a restart: the processes are the ones started above, the late worker
            # waited for the database at its start.
            for process in (api, worker, late):
                assert process.popen is not None and process.popen.poll() is None, process.log()[-3000:]

            errors = load.errors()
            assert errors, "the outage should have been seen"
            assert [a for a in errors if not unavailable_shape(a, "database_unavailable")] == []
            assert load.transport_errors == []
            assert len(ids) >= 100
            print(
                f"\n[postgres restart] {len(errors)} answers 503 while it was down, the first 200 "
                f"{load.first_ok_after(up_at):.2f} s after it was back; accepted {len(ids)} of {load.count}"
            )
            money_settled_once(settings, dict.fromkeys(ids, "completed"))
            ledger_verifies(settings)
            wait_until(lambda: _callbacks_done(settings, receiver), 60, "every callback delivered")
        assert "Traceback" not in api.log() + worker.log() + late.log()


def _stuck(settings, key: str, ids: list[str], api: Process) -> list[object]:  # type: ignore[no-untyped-def]
    """The accepted tasks not terminal yet (in the store, and as the API shows them), and what the API
    logged of the first of them."""
    stuck = in_flight(settings, ids)
    first = stuck[0].get("id") if len(stuck) > 1 else None
    try:
        shown = Counter(states(f"http://127.0.0.1:{settings.port}", key, ids).values())
    except (AssertionError, httpx.HTTPError) as exc:
        shown = Counter({repr(exc): 1})
    logged = [line for line in api.log().splitlines() if first and first in line][:10]
    return [*stuck, {"the API shows": dict(shown)}, logged]


def _callbacks_done(settings, receiver) -> bool:  # type: ignore[no-untyped-def]
    try:
        per_task = callbacks_delivered(settings, {r.headers["webhook-id"] for r in receiver.delivered()})
    except AssertionError:
        return False
    return bool(per_task)


# Started before the load (a Python start on a busy machine took longer than the load once: the lock was
# never met), it takes the lock when told on stdin.
LOCK_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
sys.stdin.readline()
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


@pytest.mark.heavy(seconds=15)
def test_sqlite_write_lock_held_by_another_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's analogue of a restart: another process (a backup tool, an operator's sqlite3 shell) holds
    the write lock past the busy timeout. Writes answer 503 meanwhile, reads go on (WAL), the worker
    waits, and everything carries on once the lock is let go."""
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 500)  # the test's patience, not the product's
    settings = make_settings(
        tmp_path,
        callback_retry_base_seconds=0.2,
        # A task whose finish the follower could not write during the lock waits out its lease, then is
        # followed again (worker/loop.py): 60 s by default, most of this test's time when it happened.
        lease_seconds=5.0,
        allow_private_urls="127.0.0.0/8",
        rate_limit_in_flight=0,
        rate_limit_rpm=0,
        rate_limit_batch_rpm=0,
    )
    with start_relay(settings) as relay, running_receiver() as receiver:
        holder = subprocess.Popen(
            [sys.executable, "-c", LOCK_HOLDER, str(tmp_path / "dreamrelay.db"), "3"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert holder.stdin is not None and holder.stdout is not None
        load = Load(relay.url, relay.key, count=100, rate=20, hook=f"{receiver.url}/hook").start()
        wait_until(lambda: load.accepted_count() >= 15, 60, "some submits accepted")
        holder.stdin.write(b"lock\n")
        holder.stdin.flush()
        assert holder.stdout.readline() == b"locked\n"
        assert holder.wait(timeout=60) == 0
        load.join()
        ids = list(load.accepted)
        wait_until(lambda: all_terminal(relay.url, relay.key, ids), 120, "every task terminal")
        errors = load.errors()
        assert errors, "the lock should have been met"
        assert [a for a in errors if not unavailable_shape(a, "database_unavailable")] == []
        assert {a.what for a in errors} <= {"submit own", "submit official"}  # reads never wait on it
        assert load.transport_errors == []
        money_settled_once(settings, dict.fromkeys(ids, "completed"))
        ledger_verifies(settings)
        wait_until(lambda: _callbacks_done(settings, receiver), 60, "every callback delivered")
