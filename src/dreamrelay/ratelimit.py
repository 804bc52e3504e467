"""Per-key token buckets: in process memory, or in Redis so every process shares one limit.

A bucket is named "<kind>:<subject>" ("rpm:<key id>", "batch:<key id>", "signin:<client address>"):
the kind labels the refusals counted in dreamrelay_rate_limited_total.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from operator import attrgetter
from typing import NamedTuple, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from dreamrelay import metrics

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
NO_LIMIT = 0  # a limit of 0 (server setting or key column) switches that limit off


def effective_limit(own: int | None, default: int) -> int:
    """The key's own limit when it has one, else the server's; NO_LIMIT means no check at all."""
    return default if own is None else own


class Decision(NamedTuple):  # made on every request: a tuple is five times cheaper than a frozen dataclass
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the bucket is full again
    retry_after: int  # seconds to wait before the next request can pass (0 when allowed)

    def headers(self) -> dict[str, str]:
        values = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            values["Retry-After"] = str(self.retry_after)
        return values


def _decide(bucket: str, tokens: float, limit: int, allowed: bool) -> Decision:
    if not allowed:
        metrics.RATE_LIMITED.labels(bucket.partition(":")[0]).inc()
    rate = limit / WINDOW_SECONDS
    retry = 0 if allowed else max(1, math.ceil((1.0 - tokens) / rate))
    # allowed, limit, remaining, reset_seconds, retry_after (positional: made on every request)
    return Decision(allowed, limit, max(int(tokens), 0), math.ceil((limit - tokens) / rate), retry)


def _shown(decisions: list[Decision]) -> Decision:
    """Of several buckets asked at once, the one to report: a refusing one (the longest wait), else the
    one closest to running out (the first on a tie)."""
    refused = [d for d in decisions if not d.allowed]
    if refused:
        return max(refused, key=_retry_after)
    return min(decisions, key=_remaining)


_retry_after = attrgetter("retry_after")
_remaining = attrgetter("remaining")


class RateLimiter(Protocol):
    async def hit(self, bucket: str, limit: int, cost: int = 1) -> Decision:
        """Take `cost` tokens if at least one is left (cost 0: only ask whether one is)."""
        ...

    async def hit_all(self, buckets: Sequence[tuple[str, int]]) -> Decision:
        """One check of several buckets: a token is taken from each only if every one has one."""
        ...


class MemoryRateLimiter:
    """A bucket of `limit` tokens refilled at limit per minute; one process only."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    async def hit(self, bucket: str, limit: int, cost: int = 1) -> Decision:
        now = time.monotonic()
        tokens, last = self._buckets.get(bucket, (float(limit), now))
        tokens = min(float(limit), tokens + (now - last) * limit / WINDOW_SECONDS)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= cost
        self._buckets[bucket] = (tokens, now)
        return _decide(bucket, tokens, limit, allowed)

    async def hit_all(self, buckets: Sequence[tuple[str, int]]) -> Decision:
        if len(buckets) == 1:
            return await self.hit(*buckets[0])
        now = time.monotonic()
        levels = []
        for bucket, limit in buckets:
            tokens, last = self._buckets.get(bucket, (float(limit), now))
            levels.append(min(float(limit), tokens + (now - last) * limit / WINDOW_SECONDS))
        allowed = min(levels) >= 1.0
        decisions = []
        for (bucket, limit), tokens in zip(buckets, levels, strict=True):
            if allowed:
                tokens -= 1.0
            self._buckets[bucket] = (tokens, now)
            decisions.append(_decide(bucket, tokens, limit, allowed or tokens >= 1.0))
        return _shown(decisions)


# The same bucket, refilled from Redis's own clock, read-modified-written atomically by one script.
_BUCKET_SCRIPT = """
local limit = tonumber(ARGV[1])
local rate = limit / (tonumber(ARGV[2]) * 1000)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or limit
local last = tonumber(state[2]) or now
tokens = math.min(limit, tokens + math.max(now - last, 0) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - tonumber(ARGV[3] or 1)
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(limit / rate) + 1000)
return {allowed, tostring(tokens)}
"""

# Several buckets in one round trip: refill all, take a token from each only if every one has one.
_BUCKETS_SCRIPT = """
local window = tonumber(ARGV[1])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local levels = {}
local allowed = 1
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 1])
  local rate = limit / (window * 1000)
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or limit
  local last = tonumber(state[2]) or now
  tokens = math.min(limit, tokens + math.max(now - last, 0) * rate)
  if tokens < 1 then allowed = 0 end
  levels[i] = tokens
end
local out = {allowed}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 1])
  local tokens = levels[i] - allowed
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(window * 1000) + 1000)
  out[i + 1] = tostring(tokens)
end
return out
"""


class RedisRateLimiter:
    """Shared buckets. While Redis is unreachable every limit still holds, from this process's own
    buckets (a limit then holds per process: with N processes a key may get up to N times its limit);
    the shared buckets take over again at the first check Redis answers. Never fails open, never
    fails a request because of Redis."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._script = self._redis.register_script(_BUCKET_SCRIPT)
        self._many = self._redis.register_script(_BUCKETS_SCRIPT)
        self._prefix = prefix
        self._local = MemoryRateLimiter()
        self._down_since: float | None = None

    def _failed(self, exc: RedisError) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("Redis unreachable: rate limits hold per process until it answers: %s", exc)

    def _answered(self) -> None:
        if self._down_since is not None:
            took = time.monotonic() - self._down_since
            log.warning("Redis answers again: rate limits shared again after %.1f s", took)
            self._down_since = None

    async def hit(self, bucket: str, limit: int, cost: int = 1) -> Decision:
        try:
            allowed, tokens = await self._script(
                keys=[self._prefix + bucket], args=[limit, WINDOW_SECONDS, cost]
            )
        except RedisError as exc:
            self._failed(exc)
            return await self._local.hit(bucket, limit, cost)
        if self._down_since is not None:
            self._answered()
        return _decide(bucket, float(tokens), limit, bool(int(allowed)))

    async def hit_all(self, buckets: Sequence[tuple[str, int]]) -> Decision:
        if len(buckets) == 1:
            return await self.hit(*buckets[0])
        keys = [self._prefix + bucket for bucket, _ in buckets]
        try:
            answer = await self._many(keys=keys, args=[WINDOW_SECONDS, *(limit for _, limit in buckets)])
        except RedisError as exc:
            self._failed(exc)
            return await self._local.hit_all(buckets)
        if self._down_since is not None:
            self._answered()
        allowed = bool(int(answer[0]))
        decisions = []
        for (bucket, limit), tokens in zip(buckets, answer[1:], strict=True):
            level = float(tokens)
            decisions.append(_decide(bucket, level, limit, allowed or level >= 1.0))
        return _shown(decisions)


def create_rate_limiter(redis: Redis | None, prefix: str) -> RateLimiter:
    return RedisRateLimiter(redis, prefix + "rl:") if redis is not None else MemoryRateLimiter()
