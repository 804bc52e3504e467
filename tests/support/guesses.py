"""Sign-in guesses sent until the address's throttle answers 429, and the bound that answer must keep."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

SIGN_INS_PER_MINUTE = 20  # the relay's bucket of failed sign-ins per client address
SECONDS_PER_REFILL = 60 / SIGN_INS_PER_MINUTE


@dataclass(frozen=True)
class Guesses:
    statuses: list[int]
    seconds: float

    def ran_dry(self) -> bool:
        """The bucket ran dry after its 20 plus what refilled while the guesses were sent (one every
        3 s, however slowly a loaded machine answered), never later."""
        refilled = self.seconds / SECONDS_PER_REFILL
        return self.statuses[-1] == 429 and len(self.statuses) <= SIGN_INS_PER_MINUTE + refilled + 2


def guess_until_refused(send: Callable[[int], int], most: int = 200) -> Guesses:
    """Call send(i) (one wrong sign-in, returning its status) until the first 429 or `most` calls."""
    started = time.monotonic()
    statuses: list[int] = []
    while 429 not in statuses and len(statuses) < most:
        statuses.append(send(len(statuses)))
    return Guesses(statuses, time.monotonic() - started)
