"""How often a running task is polled: few requests, and the result seen soon after it exists."""

from __future__ import annotations

import pytest

from dreamrelay.domain.timings import Durations
from dreamrelay.domain.timings import poll_delay as delay


def follow(job_seconds: float, expected: float | None, first_poll: float = 0.5) -> tuple[int, float]:
    """Poll a job that finishes at `job_seconds`: how many polls it takes and how late the last one is."""
    at, polls = first_poll, 1
    while at < job_seconds:
        at += delay(at, expected)
        polls += 1
    return polls, at - job_seconds


@pytest.mark.parametrize("job", [10.0, 50.0, 120.0, 300.0])
def test_without_history_young_tasks_are_polled_often_and_old_ones_at_most_every_15_s(job: float) -> None:
    _polls, lag = follow(job, None)
    assert lag <= max(job * 0.25, 0.5) + 1e-9
    assert all(0.5 <= delay(age, None) <= 15.0 for age in (0.0, 1.0, 30.0, 600.0))


@pytest.mark.parametrize("job", [50.0, 120.0, 300.0])
def test_a_known_duration_costs_about_what_every_15_s_costs_and_lags_far_less(job: float) -> None:
    every_15s = 1 + -(-job // 15)
    polls, lag = follow(job, expected=job)
    assert polls <= every_15s + 2
    assert lag <= 0.05 * job + 1e-9  # the anchors' 15 s polling lags 7.5 s on average
    unknown_polls, _ = follow(job, None)
    assert polls < unknown_polls


def test_a_job_slower_than_usual_is_still_found_and_state_is_never_older_than_15_s() -> None:
    _polls, lag = follow(200.0, expected=60.0)
    assert lag <= 15.0
    assert max(delay(age, 60.0) for age in range(0, 400)) <= 15.0


def test_durations_need_a_few_samples_and_take_the_median() -> None:
    seen = Durations()
    kind = (1, "ray-2", "720p", "5s")
    seen.note(kind, 40.0)
    seen.note(kind, 100.0)
    assert seen.expected(kind) is None
    seen.note(kind, 50.0)
    assert seen.expected(kind) == 50.0
    assert seen.expected((2, "ray-2", "720p", "5s")) is None
