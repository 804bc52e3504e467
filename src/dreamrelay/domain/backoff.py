"""Retry schedules: exponential with full jitter, capped, for callbacks to customers."""

from __future__ import annotations

import random

MAX_DELAY_SECONDS = 3600.0


def callback_delay(attempts: int, base_seconds: float, rng: random.Random | None = None) -> float:
    """Wait before the next try after `attempts` failed ones: base·2^(n-1), capped at an hour, jittered.

    Jitter takes the delay from [½·d, d] so receivers coming back from an outage are not hit in step.
    """
    delay = min(base_seconds * 2 ** max(attempts - 1, 0), MAX_DELAY_SECONDS)
    return delay * (0.5 + 0.5 * (rng or random).random())
