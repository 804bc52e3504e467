"""Poll and retry timings: first poll, backoff after errors, the deadline rules and callback retries."""

from __future__ import annotations

import random

import pytest

from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.domain.timings import (
    CALLBACK_MAX_DELAY_SECONDS,
    CALLBACK_SAFETY_POLL_SECONDS,
    DISPATCH_GRACE_SECONDS,
    ERROR_DELAY_MAX_SECONDS,
    FIRST_POLL_DELAY_SECONDS,
    Durations,
    callback_delay,
    error_delay,
    first_poll_delay,
    overdue_reason,
    poll_delay,
    task_kind,
)


def task(**values: object) -> Task:
    base: dict[str, object] = {
        "id": "t1",
        "account_id": 1,
        "api_key_id": 1,
        "channel_id": 7,
        "action": "generate",
        "parent_id": None,
        "model": "ray-v2",
        "api_format": "luma",
        "request": {"resolution": "720p", "duration": "5s"},
        "state": TaskState.PENDING,
        "version": 1,
        "upstream_id": "up-1",
        "upstream_state": None,
        "failure_reason": None,
        "callback_url": None,
        "media": None,
        "body": b"{}",
        "created_at": 1000.0,
        "updated_at": 1000.0,
        "finished_at": None,
        "deadline_at": 1000.0 + 3600,
        "next_poll_at": 1000.5,
        "poll_count": 0,
        "poll_errors": 0,
        "lease_owner": None,
        "lease_until": None,
        "price": 10,
    }
    base.update(values)
    return Task(**base)  # type: ignore[arg-type]


def test_the_first_poll_is_soon_unless_upstream_calls_back() -> None:
    assert first_poll_delay(False) == FIRST_POLL_DELAY_SECONDS == 0.5
    assert first_poll_delay(True) == CALLBACK_SAFETY_POLL_SECONDS == 20.0


@pytest.mark.parametrize(
    ("errors", "expected"), [(0, 2.0), (1, 4.0), (2, 8.0), (4, 32.0), (5, 60.0), (30, 60.0)]
)
def test_failed_polls_back_off_doubling_up_to_a_minute(errors: int, expected: float) -> None:
    assert error_delay(errors, 2.0) == expected
    assert error_delay(errors, 2.0) <= ERROR_DELAY_MAX_SECONDS


def test_polls_stay_between_half_a_second_and_fifteen_seconds() -> None:
    for age in (0.0, 0.1, 2.0, 10.0, 59.0, 60.0, 1000.0):
        for expected in (None, 5.0, 60.0, 300.0):
            assert 0.5 <= poll_delay(age, expected) <= 15.0
    assert poll_delay(8.0, None) == 2.0  # a quarter of the age


def test_a_known_duration_waits_until_shortly_before_it_then_asks_often() -> None:
    assert poll_delay(10.0, 100.0) == 15.0  # far from 90 s: the 15 s ceiling
    assert poll_delay(85.0, 100.0) == 5.0  # up to 90 s exactly
    assert poll_delay(95.0, 100.0) == 5.0  # 5 % of the expected duration
    assert poll_delay(120.0, 100.0) == 10.0  # overrun: 5 % plus a quarter of the overrun


def test_durations_need_three_samples_and_take_the_median() -> None:
    seen = Durations()
    kind = task_kind(task())
    assert kind == (7, "ray-v2", "720p", "5s")
    seen.note(kind, 40.0)
    seen.note(kind, 60.0)
    assert seen.expected(kind) is None
    seen.note(kind, 50.0)
    assert seen.expected(kind) == 50.0
    assert seen.next_poll_delay(task(), now=1010.0) == poll_delay(10.0, 50.0)


def test_a_task_never_dispatched_or_past_its_deadline_is_overdue() -> None:
    assert overdue_reason(task(), now=1000.0 + 60) is None
    undispatched = task(upstream_id=None)
    assert overdue_reason(undispatched, now=1000.0 + DISPATCH_GRACE_SECONDS - 1) is None
    assert overdue_reason(undispatched, now=1000.0 + DISPATCH_GRACE_SECONDS) == (
        "the submission to upstream was interrupted"
    )
    assert overdue_reason(task(), now=1000.0 + 3600) == "timed out: no result within 3600 s"


@pytest.mark.parametrize("attempts", [1, 2, 3, 8, 20, 40])
def test_callback_retries_back_off_with_jitter_up_to_an_hour(attempts: int) -> None:
    full = min(10.0 * 2 ** (attempts - 1), CALLBACK_MAX_DELAY_SECONDS)
    delays = [callback_delay(attempts, 10.0, random.Random(seed)) for seed in range(50)]
    assert all(full / 2 <= d <= full for d in delays)
    assert len(set(delays)) > 1  # jittered: receivers coming back are not hit in step


def test_callback_retry_extremes_of_the_jitter() -> None:
    class Fixed(random.Random):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value

        def random(self) -> float:
            return self.value

    assert callback_delay(1, 10.0, Fixed(0.0)) == 5.0
    assert callback_delay(1, 10.0, Fixed(1.0)) == 10.0
    assert callback_delay(0, 10.0, Fixed(1.0)) == 10.0
