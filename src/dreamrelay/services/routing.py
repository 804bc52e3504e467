"""Which channels may take a task, in the order to try them: priority tiers, weighted within a tier."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence

from dreamrelay.domain import routing
from dreamrelay.domain.channel import Channel
from dreamrelay.upstreams.kinds import CAPABILITIES

# One generator for every routing decision (a new Random() per task reads os.urandom each time);
# reseeded in a forked child so two API processes never draw the same sequence.
_shuffles = random.Random()
os.register_at_fork(after_in_child=_shuffles.seed)


def candidates(
    channels: Sequence[Channel],
    model: str,
    capability: str,
    *,
    pinned_id: int | None = None,
    rng: random.Random | None = None,
    now: float | None = None,
) -> list[Channel]:
    """The rule (domain/routing.py) over what the registered kinds declare they make."""
    return routing.candidates(
        channels, model, capability, CAPABILITIES, rng=rng or _shuffles, pinned_id=pinned_id, now=now
    )
