"""One rate-limit check over several buckets (a batch query's requests-per-minute and batch buckets):
a token leaves each bucket only when every one has one; the answer shows the tightest bucket."""

from __future__ import annotations

import asyncio

import pytest

from dreamrelay.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from dreamrelay.shared_state import connect_redis
from tests.support.services import REDIS_URL


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_several_buckets_in_one_check(kind: str, redis_ns: str) -> None:
    async def run() -> None:
        redis = connect_redis(REDIS_URL)
        limiter: RateLimiter = MemoryRateLimiter() if kind == "memory" else RedisRateLimiter(redis, redis_ns)
        try:
            both = [("k:rpm", 5), ("k:batch", 2)]
            first, second, third = [await limiter.hit_all(both) for _ in range(3)]
            assert first.allowed and (first.limit, first.remaining) == (2, 1)  # the tighter bucket shows
            assert second.allowed and second.remaining == 0
            assert not third.allowed and third.limit == 2 and third.retry_after >= 1
            assert third.headers()["Retry-After"] == str(third.retry_after)
            # The refused check took nothing from the other bucket: 5 - 2 tokens are left in it.
            alone = await limiter.hit("k:rpm", 5)
            assert alone.allowed and alone.remaining == 2
            single = await limiter.hit_all([("other", 3)])
            assert single.allowed and single.remaining == 2
        finally:
            await redis.aclose()

    asyncio.run(run())
