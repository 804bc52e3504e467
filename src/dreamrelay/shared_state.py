"""What processes share through Redis: one client per process, and cache generations.

A cache generation is a counter that any process bumps after changing what a cache holds. A process
keeps its fast in-memory cache only while the counter still reads what it read when it filled the
cache: one Redis GET per check, so a change made in any process holds in every other one from the
very next request. Without Redis the counter is this process's own (one process, nothing to share).
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 1.0


def connect_redis(url: str) -> Redis:
    """Short timeouts: a slow Redis must not hold requests for long (callers decide what a failure means)."""
    return Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )


class Generations(Protocol):
    async def read(self, name: str) -> int | None:
        """The current generation of cache `name`; None when it cannot be known (trust no cache)."""
        ...

    async def bump(self, name: str) -> None:
        """Tell every process that what cache `name` holds has changed."""
        ...


class LocalGenerations:
    def __init__(self) -> None:
        self._values: dict[str, int] = {}

    async def read(self, name: str) -> int | None:
        return self._values.get(name, 0)

    async def bump(self, name: str) -> None:
        self._values[name] = self._values.get(name, 0) + 1


class RedisGenerations:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._down_since: float | None = None  # a failed read until one succeeds: logged once each way

    async def read(self, name: str) -> int | None:
        try:
            value = await self._redis.get(self._prefix + name)
        except RedisError as exc:
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning("Redis unreachable: key lookups go to the database until it answers: %s", exc)
            return None
        if self._down_since is not None:
            took = time.monotonic() - self._down_since
            log.warning("Redis answers again: key lookups cached again after %.1f s", took)
            self._down_since = None
        return int(value or 0)

    async def bump(self, name: str) -> None:
        try:
            await self._redis.incr(self._prefix + name)
        except RedisError as exc:
            # The change itself is committed; other processes drop their copy when it ages out.
            log.error("could not announce a change of cache %r, Redis failed: %s", name, exc)


def create_generations(redis: Redis | None, prefix: str) -> Generations:
    return RedisGenerations(redis, prefix + "gen:") if redis is not None else LocalGenerations()
