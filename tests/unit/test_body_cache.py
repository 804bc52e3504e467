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


def test_a_joined_answer_is_kept_only_while_every_part_is() -> None:
    cache = BodyCache(max_bytes=10_000)
    cache.put("a", 1, b"A")
    cache.put("b", 1, b"B")
    cache.keep_joined(1, ("a", "b", "a"), b"[A,B]")
    assert cache.joined(1, ("a", "b", "a")) == b"[A,B]"
    assert cache.joined(1, ("a", "b")) is None  # the ids as asked, not as a set
    assert cache.joined(2, ("a", "b", "a")) is None  # another account's
    cache.keep_joined(2, ("a",), b"[A]")  # a part it does not own: not kept
    assert cache.joined(2, ("a",)) is None
    cache.keep_joined(1, ("a", "gone"), b"[A]")  # a part no longer cached: not kept
    assert cache.joined(1, ("a", "gone")) is None
    cache.forget("b")  # a deletion drops every joined answer
    assert cache.joined(1, ("a", "b", "a")) is None


def test_a_joined_answer_expires_with_its_parts_and_fits_its_share() -> None:
    stale = BodyCache(max_bytes=10_000, ttl=-1.0)
    stale.put("a", 1, b"A")
    stale.keep_joined(1, ("a",), b"[A]")
    assert stale.joined(1, ("a",)) is None
    small = BodyCache(max_bytes=800)  # answers get 200 bytes, each id counted as 100
    small.put("a", 1, b"A")
    small.put("b", 1, b"B")
    small.keep_joined(1, ("a",), b"[A]")
    small.keep_joined(1, ("b",), b"[B]")
    assert small.joined(1, ("a",)) is None  # the oldest made room
    assert small.joined(1, ("b",)) == b"[B]"
    small.keep_joined(1, ("a", "b", "a"), b"[A,B]")  # 305 bytes: over the share, never kept
    assert small.joined(1, ("a", "b", "a")) is None
