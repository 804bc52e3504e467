"""Every poll and retry timing: when to ask upstream again, when to retry a callback, when to give up.

Pure functions of their inputs (plus `Durations`, what this process has seen of how long tasks take).

Without knowledge a task is polled at a quarter of its age (0.5 s to 15 s): young tasks often, old
ones rarely. Once a channel has finished a few tasks of the same kind, we know roughly when the next
one will be done: until shortly before then it is asked only every 15 s (state changes still show
within 15 s, as with the common gateways), around then every few seconds, so the result is seen
soon after it exists at a fraction of the requests.
"""

from __future__ import annotations

import random
import statistics
from collections import deque
from dataclasses import dataclass, field

from dreamrelay.domain.task import Task

# ---- polling a running task ----------------------------------------------------------------------
MIN_DELAY = 0.5
MAX_DELAY = 15.0
SAMPLES_KEPT = 25
SAMPLES_NEEDED = 3
EARLY = 0.9  # start asking often at this share of the expected duration
NEAR_STEP = 0.05  # then every this share of the expected duration, growing with the overrun

FIRST_POLL_DELAY_SECONDS = 0.5  # after upstream accepted a task
# Channels that call us back are still polled, rarely, in case a callback is lost.
CALLBACK_SAFETY_POLL_SECONDS = 20.0
# A task still pending without an upstream id this long after creation was interrupted mid-dispatch.
DISPATCH_GRACE_SECONDS = 300.0
STORAGE_RETRY_SECONDS = 15.0  # our media storage failed: ask upstream (and try storing) again then
FINISHING_RECHECK_SECONDS = 5.0  # a poll found this media being copied already: look again then
ERROR_DELAY_MAX_SECONDS = 60.0  # a failing poll is retried at least once a minute

# ---- callbacks to customers ----------------------------------------------------------------------
CALLBACK_MAX_DELAY_SECONDS = 3600.0


def poll_delay(age: float, expected: float | None) -> float:
    """Seconds until the next poll of a task `age` seconds old that usually takes `expected`."""
    quarter = min(max(age * 0.25, MIN_DELAY), MAX_DELAY)
    if expected is None:
        return quarter
    start = EARLY * expected
    if age < start:
        return min(max(start - age, MIN_DELAY), MAX_DELAY)
    return min(max(NEAR_STEP * expected + 0.25 * max(age - expected, 0.0), MIN_DELAY), MAX_DELAY)


def first_poll_delay(calls_back: bool) -> float:
    """After upstream accepted a task: soon, or rarely when upstream will call us back."""
    return CALLBACK_SAFETY_POLL_SECONDS if calls_back else FIRST_POLL_DELAY_SECONDS


def error_delay(errors: int, base_seconds: float) -> float:
    """After a failed poll: base·2^n, at most a minute."""
    return float(min(base_seconds * 2**errors, ERROR_DELAY_MAX_SECONDS))


def overdue_reason(task: Task, now: float) -> str | None:
    """Why a leased task should end now without asking upstream, if it should."""
    if task.upstream_id is None and now - task.created_at >= DISPATCH_GRACE_SECONDS:
        return "the submission to upstream was interrupted"
    if now >= task.deadline_at:
        return f"timed out: no result within {int(task.deadline_at - task.created_at)} s"
    return None


def callback_delay(attempts: int, base_seconds: float, rng: random.Random | None = None) -> float:
    """Wait before the next try after `attempts` failed ones: base·2^(n-1), capped at an hour, jittered.

    Jitter takes the delay from [½·d, d] so receivers coming back from an outage are not hit in step.
    """
    delay = min(base_seconds * 2 ** max(attempts - 1, 0), CALLBACK_MAX_DELAY_SECONDS)
    return float(delay * (0.5 + 0.5 * (rng or random).random()))


def task_kind(task: Task) -> tuple[object, ...]:
    """Tasks of one kind on one channel take about as long as each other."""
    request = task.request
    return (task.channel_id, task.model, request.get("resolution"), request.get("duration"))


@dataclass
class Durations:
    """Recent submit-to-finish times per (channel, model, resolution, duration), in this process."""

    _seen: dict[tuple[object, ...], deque[float]] = field(default_factory=dict)

    def note(self, kind: tuple[object, ...], seconds: float) -> None:
        self._seen.setdefault(kind, deque(maxlen=SAMPLES_KEPT)).append(seconds)

    def expected(self, kind: tuple[object, ...]) -> float | None:
        seen = self._seen.get(kind)
        if seen is None or len(seen) < SAMPLES_NEEDED:
            return None
        return statistics.median(seen)

    def next_poll_delay(self, task: Task, now: float) -> float:
        return poll_delay(now - task.created_at, self.expected(task_kind(task)))
