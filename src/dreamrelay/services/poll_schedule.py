"""When to ask upstream again about a task that is still running.

Without knowledge a task is polled at a quarter of its age (0.5 s to 15 s): young tasks often, old
ones rarely. Once a channel has finished a few tasks of the same kind, we know roughly when the next
one will be done: until shortly before then it is asked only every 15 s (state changes still show
within 15 s, as with the common gateways), around then every few seconds, so the result is seen
soon after it exists at a fraction of the requests.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

MIN_DELAY = 0.5
MAX_DELAY = 15.0
SAMPLES_KEPT = 25
SAMPLES_NEEDED = 3
EARLY = 0.9  # start asking often at this share of the expected duration
NEAR_STEP = 0.05  # then every this share of the expected duration, growing with the overrun


def delay(age: float, expected: float | None) -> float:
    """Seconds until the next poll of a task `age` seconds old that usually takes `expected`."""
    quarter = min(max(age * 0.25, MIN_DELAY), MAX_DELAY)
    if expected is None:
        return quarter
    start = EARLY * expected
    if age < start:
        return min(max(start - age, MIN_DELAY), MAX_DELAY)
    return min(max(NEAR_STEP * expected + 0.25 * max(age - expected, 0.0), MIN_DELAY), MAX_DELAY)


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
