"""Which channels may take a task, in the order to try them: a pure rule over the channels, the catalog
and what each channel kind declares it makes (`upstreams/kinds.py` passes its declarations in).

A channel serves a model when its kind declares the task's capability, the catalog names its kind among
the model's, and the operator's model list (if any) has the model. Channels try in priority tiers (highest
first), shuffled within a tier in proportion to their weights; a pinned task (an extend, an upscale, a
chain) may go only to its channel, if it is enabled and makes the capability.
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection, Mapping, Sequence
from itertools import groupby

from dreamrelay.domain.catalog import CATALOG
from dreamrelay.domain.channel import Channel

Declared = Mapping[str, Collection[str]]  # kind name → the capabilities it makes


def makes(channel: Channel, capability: str, declared: Declared) -> bool:
    """Whether `channel`'s kind declares `capability`."""
    return capability in declared.get(channel.kind, ())


def serves(channel: Channel, model: str, capability: str, declared: Declared) -> bool:
    """Whether `channel` can make `capability` on `model` (see the module's text)."""
    spec = CATALOG.get(model)
    if spec is None or channel.kind not in spec.kinds or not makes(channel, capability, declared):
        return False
    return channel.models is None or model in channel.models


def candidates(
    channels: Sequence[Channel],
    model: str,
    capability: str,
    declared: Declared,
    *,
    rng: random.Random,
    pinned_id: int | None = None,
    now: float | None = None,
) -> list[Channel]:
    if pinned_id is not None:
        # An extend must reach the account upstream that holds the parent generation.
        return [c for c in channels if c.id == pinned_id and c.enabled and makes(c, capability, declared)]
    moment = time.time() if now is None else now
    usable = [c for c in channels if c.available(moment) and serves(c, model, capability, declared)]
    usable.sort(key=lambda c: -c.priority)
    ordered: list[Channel] = []
    for _priority, tier in groupby(usable, key=lambda c: c.priority):
        ordered.extend(weighted_shuffle(list(tier), rng))
    return ordered


def weighted_shuffle(tier: list[Channel], rng: random.Random) -> list[Channel]:
    """Efraimidis–Spirakis: the key u^(1/w) orders a sample in proportion to weight."""
    return sorted(tier, key=lambda c: rng.random() ** (1.0 / max(c.weight, 1)), reverse=True)
