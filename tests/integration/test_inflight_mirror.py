"""The in-flight mirror's rules, without a store: owners only, newer versions only, finished and deleted
tasks leave, bounded, silent before its feed runs and once its feed is older than the bound, and where a
feed read starts on PostgreSQL (a window of markers back)."""

from __future__ import annotations

import time
from typing import Any

from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.inflight import InFlightMirror


def task(task_id: str, *, version: int = 1, account: int = 1, **values: Any) -> Task:
    fields: dict[str, Any] = {
        "id": task_id,
        "account_id": account,
        "api_key_id": 1,
        "channel_id": None,
        "action": "generate",
        "parent_id": None,
        "model": "ray-2",
        "api_format": "luma",
        "request": {},
        "state": TaskState.PENDING,
        "version": version,
        "upstream_id": None,
        "upstream_state": None,
        "failure_reason": None,
        "callback_url": None,
        "media": None,
        "body": f"{task_id}@{version}".encode(),
        "created_at": 0.0,
        "updated_at": 0.0,
        "finished_at": None,
        "deadline_at": 0.0,
        "next_poll_at": None,
        "poll_count": 0,
        "poll_errors": 0,
        "lease_owner": None,
        "lease_until": None,
        "price": 0,
    }
    return Task(**{**fields, **values})


def running(max_tasks: int = 10, **options: Any) -> InFlightMirror:
    mirror = InFlightMirror(max_tasks, **options)
    mirror._cursor, mirror._synced_at = 0, time.monotonic()  # as after a feed read
    return mirror


def test_nothing_is_kept_or_answered_before_the_feed_runs() -> None:
    mirror = InFlightMirror(10)
    mirror.keep(task("a"))
    assert len(mirror) == 0 and mirror.get("a", 1) is None


def test_owner_only_newer_versions_only_and_finished_or_deleted_tasks_leave() -> None:
    mirror = running()
    mirror.keep(task("a", version=2))
    mirror.keep(task("a", version=1))  # an older read arriving late
    held = mirror.get("a", 1)
    assert held is not None and held.version == 2
    assert mirror.get("a", 2) is None
    assert mirror.get_many(["a", "b", "a"], 1) == [held, None, held]
    assert mirror.get_many(["a"], 2) == [None]
    mirror.keep(task("a", version=3, state=TaskState.COMPLETED))
    assert mirror.get("a", 1) is None and len(mirror) == 0
    mirror.keep(task("b"))
    mirror.keep(task("b", version=2, deleted_at=1.0))
    assert len(mirror) == 0


def test_stale_feed_answers_nothing() -> None:
    mirror = running(bound=1.0)
    mirror.keep(task("a"))
    mirror._synced_at -= 1.5
    assert mirror.get("a", 1) is None and mirror.get_many(["a"], 1) == [None]


def test_bounded_the_oldest_go_first_and_encodings_go_with_them() -> None:
    mirror = running(max_tasks=2)
    for name in ("a", "b"):
        mirror.keep(task(name))
    assert mirror.encoded(task("a"), "official", lambda t: b"A1") == b"A1"
    assert mirror.encoded(task("a"), "official", lambda t: b"other") == b"A1"  # same version: kept
    assert mirror.encoded(task("a", version=2), "official", lambda t: b"A2") == b"A2"
    mirror.keep(task("c"))
    assert mirror.get("a", 1) is None and len(mirror) == 2
    assert not mirror._encoded


def test_postgres_feed_reads_start_a_window_back() -> None:
    mirror = running(lookback=5.0)
    mirror._cursors.extend([(100.0, 10), (103.0, 20), (106.0, 30)])
    mirror._cursor = 30
    assert mirror._low(107.0) == 10  # 102: the cursor as it was then
    assert mirror._low(108.5) == 20  # 103.5
    assert running()._low(0.0) == 0  # SQLite: from the cursor itself
