"""The finished-bodies cache: a batch lookup answers what one lookup per id answers."""

from __future__ import annotations

from dreamrelay.body_cache import BodyCache


def test_get_many_answers_like_get_for_each_id() -> None:
    cache = BodyCache(max_bytes=1_000)
    cache.put("mine", 1, b"A")
    cache.put("theirs", 2, b"B")
    bodies, missing = cache.get_many(["mine", "theirs", "unknown", "mine"], 1)
    assert bodies == [b"A", None, None, b"A"]
    assert missing == ["theirs", "unknown"]
    assert [cache.get(i, 1) for i in ("mine", "theirs", "unknown")] == [b"A", None, None]
    assert cache.get_many(["mine"], 1) == ([b"A"], [])


def test_get_many_drops_what_has_expired() -> None:
    cache = BodyCache(max_bytes=1_000, ttl=-1.0)  # every entry is stale at once
    cache.put("old", 1, b"A")
    assert len(cache) == 1
    assert cache.get_many(["old"], 1) == ([None], ["old"])
    assert len(cache) == 0
