"""Which channels may take a task, and in which order (domain/routing.py): pure, over the kinds' declared
capabilities as upstreams/kinds.py passes them in."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from dreamrelay.domain.catalog import AGENTS, DREAM_MACHINE, IMAGE, SEEDANCE, VIDEO
from dreamrelay.domain.channel import Channel
from dreamrelay.domain.routing import Declared, candidates, makes, serves

DECLARED: Declared = {
    "sandbox": {VIDEO, IMAGE, AGENTS, DREAM_MACHINE, SEEDANCE},
    "luma": {VIDEO, DREAM_MACHINE},
    "relay": {VIDEO},
    "kling": {IMAGE},
    "luma-agents": {AGENTS},
    "seedance": {SEEDANCE},
}


def channel(cid: int, kind: str = "luma", **values: object) -> Channel:
    settings: dict[str, object] = {
        "models": None,
        "priority": 0,
        "weight": 1,
        "concurrency": 4,
        "enabled": True,
        **values,
    }
    return Channel(cid, f"c{cid}", kind, "https://up", "sk", **settings)  # type: ignore[arg-type]


def ids(found: list[Channel]) -> list[int]:
    return [c.id for c in found]


def test_a_kind_makes_what_it_declares_and_an_unknown_kind_nothing() -> None:
    assert makes(channel(1, "luma"), DREAM_MACHINE, DECLARED)
    assert not makes(channel(1, "relay"), DREAM_MACHINE, DECLARED)
    assert not makes(channel(1, "gone"), VIDEO, DECLARED)


@pytest.mark.parametrize(
    ("kind", "model", "capability", "served"),
    [
        ("luma", "ray-v2", VIDEO, True),
        ("relay", "ray-v2", VIDEO, True),
        ("relay", "ray-v2", DREAM_MACHINE, False),  # a relay has no Dream Machine actions
        ("luma", "ray-3.2", AGENTS, False),  # the catalog names luma-agents for Ray 3.2, not luma
        ("luma-agents", "ray-3.2", AGENTS, True),
        ("luma-agents", "ray-v2", VIDEO, False),
        ("kling", "kling-image", IMAGE, True),
        ("sandbox", "uni-1", AGENTS, True),
        ("luma", "photon-1", DREAM_MACHINE, True),
        ("luma", "no-such-model", VIDEO, False),
    ],
)
def test_a_channel_serves_a_model_its_kind_and_the_catalog_both_allow(
    kind: str, model: str, capability: str, served: bool
) -> None:
    assert serves(channel(1, kind), model, capability, DECLARED) is served


def test_the_operators_model_list_narrows_a_channel() -> None:
    narrowed = channel(1, "luma", models=("ray-flash-2",))
    assert serves(narrowed, "ray-flash-2", VIDEO, DECLARED)
    assert not serves(narrowed, "ray-v2", VIDEO, DECLARED)


def test_higher_priority_tiers_come_first_and_unusable_channels_not_at_all() -> None:
    channels = [
        channel(1, priority=0),
        channel(2, priority=10),
        channel(3, priority=5),
        channel(4, priority=99, enabled=False),
        channel(5, priority=99, retry_at=200.0),  # benched until 200
        channel(6, "kling", priority=99),  # cannot make the video
    ]
    found = candidates(channels, "ray-v2", VIDEO, DECLARED, rng=random.Random(1), now=100.0)
    assert ids(found) == [2, 3, 1]
    again = candidates(channels, "ray-v2", VIDEO, DECLARED, rng=random.Random(1), now=200.0)
    assert ids(again) == [5, 2, 3, 1]  # the bench is over


def test_within_a_tier_the_first_choice_follows_the_weights() -> None:
    channels = [channel(1, weight=3), channel(2, weight=1)]
    rng = random.Random(7)
    firsts = Counter(
        candidates(channels, "ray-v2", VIDEO, DECLARED, rng=rng, now=0.0)[0].id for _ in range(4000)
    )
    assert set(firsts) == {1, 2}
    assert 0.7 < firsts[1] / 4000 < 0.8  # 3 : 1


def test_a_pinned_task_goes_only_to_its_channel_while_it_is_enabled_and_makes_the_capability() -> None:
    channels = [channel(1, priority=10), channel(2, "relay"), channel(3, enabled=False)]
    rng = random.Random(0)
    assert ids(candidates(channels, "ray-v2", VIDEO, DECLARED, rng=rng, pinned_id=2)) == [2]
    assert candidates(channels, "ray-v2", DREAM_MACHINE, DECLARED, rng=rng, pinned_id=2) == []
    assert candidates(channels, "ray-v2", VIDEO, DECLARED, rng=rng, pinned_id=3) == []
    # A pin ignores the bench (the parent's upstream holds the generation) but not the kind.
    benched = [channel(4, retry_at=10**12)]
    assert ids(candidates(benched, "ray-v2", VIDEO, DECLARED, rng=rng, pinned_id=4)) == [4]
