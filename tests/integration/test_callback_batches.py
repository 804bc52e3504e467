"""Callbacks delivered in batches, as receivers see them: each task's events in order across a batch,
a slow receiver holding up no one else, a 500 retried with the attempt logged, an event whose
deliverer died delivered again by another one once its lease expired, and posts made while the store
was locked recorded once it is free (not sent again)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from dreamrelay.runtime import Runtime
from dreamrelay.settings import Settings
from dreamrelay.store import engine, outbox
from dreamrelay.worker.deliverer import PER_DESTINATION
from tests.conftest import Relay, start_relay
from tests.integration.test_callbacks import callback_settings
from tests.support.processes import Process, environment, stopped_at_exit
from tests.support.receiver import Received, running_receiver

pytestmark = pytest.mark.both_stores

DEMO_ACCOUNT_ID = 1


def enqueue(settings: Settings, url: str, tasks: int, events_per_task: int = 1) -> list[str]:
    """`events_per_task` state changes of `tasks` new tasks, all due at once, written in one
    transaction (as a burst of task changes leaves them); returns the task ids."""
    task_ids = [str(uuid.uuid4()) for _ in range(tasks)]

    async def write() -> None:
        async with Runtime.from_settings(settings) as rt, rt.db.transaction() as conn:
            for sequence in range(1, events_per_task + 1):
                for task_id in task_ids:
                    payload = orjson.dumps({"id": task_id, "step": sequence})
                    await outbox.enqueue(
                        conn,
                        task_id=task_id,
                        account_id=DEMO_ACCOUNT_ID,
                        state="processing",
                        url=url,
                        payload=payload,
                    )

    asyncio.run(write())
    return task_ids


def deliveries(relay: Relay, task_id: str) -> list[dict[str, Any]]:
    with relay.admin() as admin:
        events: list[dict[str, Any]] = admin.get("/admin/deliveries", params={"task_id": task_id}).json()
    return sorted(events, key=lambda e: e["sequence"])


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def all_delivered(relay: Relay, task_ids: list[str]) -> bool:
    return all(e["status"] == "delivered" for t in task_ids for e in deliveries(relay, t))


def sequences_by_task(received: list[Received]) -> dict[str, list[tuple[int, str]]]:
    """(sequence, what the receiver answered) per task, in the order the requests arrived."""
    found: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in received:
        found[r.headers["dreamrelay-task-id"]].append((int(r.headers["dreamrelay-sequence"]), r.answered))
    return found


def test_each_tasks_events_arrive_in_order_across_batches_and_retries(tmp_path: Path) -> None:
    tasks, steps = 12, 8
    # Every seventh request fails: a failed event is tried again before its task's next one.
    script = ["fail" if n % 7 == 3 else "ok" for n in range(60)]
    # A long timeout: the receiver answers at once, and a loaded machine must not turn a slow answer into
    # a timeout and a second (at-least-once) delivery of an accepted event.
    settings = callback_settings(tmp_path, callback_timeout_seconds=30.0)
    with running_receiver(script) as receiver, start_relay(settings) as relay:
        task_ids = enqueue(relay.settings, f"{receiver.url}/hook", tasks, steps)
        wait_until(lambda: all_delivered(relay, task_ids), "every event delivered")
        received = list(receiver.received)
    arrived = sequences_by_task(received)
    assert set(arrived) == set(task_ids)
    for task_id in task_ids:
        seen = arrived[task_id]
        # Never a later event before an earlier one was accepted; each accepted exactly once.
        assert [s for s, _ in seen] == sorted(s for s, _ in seen)
        assert [s for s, answered in seen if answered == "ok"] == list(range(1, steps + 1))
    assert any(answered == "fail" for r in arrived.values() for _, answered in r)


def test_a_slow_receiver_holds_up_no_other_receiver(tmp_path: Path) -> None:
    # The slow receiver holds its request for 30 s: far longer than 20 deliveries take on a loaded machine.
    settings = callback_settings(tmp_path, callback_timeout_seconds=60.0, shutdown_grace_seconds=0.2)
    with (
        running_receiver(["timeout"], stall_seconds=30) as slow,
        running_receiver() as fast,
        start_relay(settings) as relay,
    ):
        (stalled,) = enqueue(relay.settings, f"{slow.url}/hook", 1)
        wait_until(lambda: len(slow.received) == 1, "the slow receiver has its request")
        others = enqueue(relay.settings, f"{fast.url}/hook", 20)
        wait_until(lambda: all_delivered(relay, others), "the other receiver's events delivered")
        (held,) = deliveries(relay, stalled)
    assert len(fast.delivered()) == 20
    assert held["status"] == "pending" and held["attempts"] == 0  # still in flight


def test_a_stalled_receiver_takes_a_few_workers_and_other_accounts_callbacks_flow(tmp_path: Path) -> None:
    """100 events due to one receiver that never answers (more than the 64 workers) occupy at most
    PER_DESTINATION of them: another receiver's events are delivered meanwhile (issue 29.4)."""
    settings = callback_settings(tmp_path, callback_timeout_seconds=120.0, shutdown_grace_seconds=0.2)
    with (
        running_receiver(["timeout"] * 100, stall_seconds=120) as stalled,
        running_receiver() as fast,
        start_relay(settings) as relay,
    ):
        enqueue(relay.settings, f"{stalled.url}/hook", 100)
        wait_until(lambda: len(stalled.received) == PER_DESTINATION, "the stalled receiver has its requests")
        others = enqueue(relay.settings, f"{fast.url}/hook", 20)
        wait_until(lambda: all_delivered(relay, others), "the other receiver's events delivered", timeout=60)
        assert len(stalled.received) == PER_DESTINATION  # never more at once
    assert len(fast.delivered()) == 20


def test_a_receivers_500_is_retried_and_every_attempt_logged(tmp_path: Path) -> None:
    with running_receiver(["fail"] * 10) as receiver, start_relay(callback_settings(tmp_path)) as relay:
        task_ids = enqueue(relay.settings, f"{receiver.url}/hook", 10)
        wait_until(lambda: all_delivered(relay, task_ids), "every event delivered")
        events = [e for t in task_ids for e in deliveries(relay, t)]
    assert len(receiver.received) == 20
    for event in events:
        assert event["attempts"] == 2
        first, second = event["attempts_log"]
        assert (first["attempt"], first["status_code"], first["error"]) == (1, 500, "receiver answered 500")
        assert (second["attempt"], second["status_code"], second["error"]) == (2, 200, None)


def test_an_event_whose_deliverer_died_is_delivered_again_by_another(tmp_path: Path) -> None:
    settings = callback_settings(tmp_path, callback_timeout_seconds=30.0, lease_seconds=1.5)
    with start_relay(settings) as relay:
        key = relay.key  # the store is migrated and seeded; it has nothing to deliver yet
    first = Process(("worker",), environment(settings), tmp_path / "worker.log")
    with running_receiver(["timeout"] * 5, stall_seconds=8) as receiver, stopped_at_exit([first]):
        task_ids = enqueue(settings, f"{receiver.url}/hook", 5)
        first.start()
        wait_until(lambda: len(receiver.received) == 5, "the first deliverer posted all five")
        first.kill()  # its posts stay unanswered; its leases are never recorded nor handed back
        with start_relay(settings, key=key) as second:
            wait_until(lambda: all_delivered(second, task_ids), "the second deliverer delivered them")
            events = [e for t in task_ids for e in deliveries(second, t)]
        received = list(receiver.received)
    message_ids = [r.headers["webhook-id"] for r in received]
    assert sorted(message_ids) == sorted(2 * [e["message_id"] for e in events])  # each one twice
    for event in events:
        # The dead deliverer's attempt was never recorded: the log holds the one that got through.
        assert [(a["attempt"], a["status_code"]) for a in event["attempts_log"]] == [(1, 200)]


@pytest.mark.sqlite_only  # the outage is SQLite's write lock; PostgreSQL's (a restart) is tests/faults'
def test_posts_made_while_the_store_is_locked_are_recorded_once_it_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receiver has the events while another process holds the write lock, so their attempts cannot
    be recorded: they stay in hand and are recorded once the lock is let go, well within their lease,
    and no event is posted twice."""
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 300)  # the test's patience, not the product's
    settings = callback_settings(tmp_path, callback_timeout_seconds=30.0)
    assert settings.lease_seconds >= 60
    with running_receiver(["timeout"] * 3, stall_seconds=1.0) as receiver, start_relay(settings) as relay:
        task_ids = enqueue(relay.settings, f"{receiver.url}/hook", 3)
        wait_until(lambda: len(receiver.received) == 3, "the receiver has the three posts")
        holder = sqlite3.connect(settings.data_dir / "dreamrelay.db", isolation_level=None, timeout=30)
        holder.execute("BEGIN EXCLUSIVE")  # before the receiver answers: the attempts meet the lock
        time.sleep(2.5)
        holder.execute("ROLLBACK")
        holder.close()
        unlocked = time.monotonic()
        wait_until(lambda: all_delivered(relay, task_ids), "the three recorded", timeout=20)
        recorded_after = time.monotonic() - unlocked
        events = [e for t in task_ids for e in deliveries(relay, t)]
        received = list(receiver.received)
    assert recorded_after < settings.lease_seconds / 2
    assert sorted(r.headers["webhook-id"] for r in received) == sorted(e["message_id"] for e in events)
    for event in events:
        assert [(a["attempt"], a["status_code"]) for a in event["attempts_log"]] == [(1, 200)]
