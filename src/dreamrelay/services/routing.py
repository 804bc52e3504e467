"""Which channels may take a task, in the order to try them: priority tiers, weighted within a tier."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from itertools import groupby

from dreamrelay.domain.channel import Channel
from dreamrelay.upstreams.kinds import serves

# One generator for every routing decision (a new Random() per task reads os.urandom each time);
# reseeded in a forked child so two API processes never draw the same sequence.
_shuffles = random.Random()
os.register_at_fork(after_in_child=_shuffles.seed)


def candidates(
    channels: Sequence[Channel],
    model: str,
    *,
    pinned_id: int | None = None,
    rng: random.Random | None = None,
    now: float | None = None,
) -> list[Channel]:
    if pinned_id is not None:
        # An extend must reach the account upstream that holds the parent generation.
        return [c for c in channels if c.id == pinned_id and c.enabled]
    moment = time.time() if now is None else now
    usable = [c for c in channels if c.available(moment) and serves(c, model)]
    usable.sort(key=lambda c: -c.priority)
    rng = rng or _shuffles
    ordered: list[Channel] = []
    for _priority, tier in groupby(usable, key=lambda c: c.priority):
        ordered.extend(_weighted_shuffle(list(tier), rng))
    return ordered


def _weighted_shuffle(tier: list[Channel], rng: random.Random) -> list[Channel]:
    # Efraimidis–Spirakis: key u^(1/w) sorts a sample proportional to weight.
    return sorted(tier, key=lambda c: rng.random() ** (1.0 / max(c.weight, 1)), reverse=True)
