"""The machine's PostgreSQL and Redis for tests: real servers, one throwaway database per test.

Under CI=true a missing server fails the test; elsewhere it is skipped with a message saying why.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
import redis

PG_HOST = os.environ.get("DREAMRELAY_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("DREAMRELAY_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("DREAMRELAY_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("DREAMRELAY_TEST_PG_DB", "test")
REDIS_URL = os.environ.get("DREAMRELAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({error}); these tests need it"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " and CI=true forbids skipping", pytrace=False)
    pytest.skip(message)


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def postgres_database(template: str | None = None) -> Iterator[str]:
    """A fresh database, empty or a copy of `template`; yields its SQLAlchemy URL and drops it afterwards."""
    name = f"dreamrelay_{uuid.uuid4().hex[:12]}"
    url = create_database(name, template)
    try:
        yield url
    finally:
        drop_database(name)


def create_database(name: str, template: str | None = None) -> str:
    """Database `name`, empty or a copy of `template`; returns its SQLAlchemy URL."""
    copied = f' TEMPLATE "{template}"' if template else ""
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"{copied}'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        _unavailable(f"PostgreSQL at {PG_HOST}:{PG_PORT}", exc)
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def redis_prefix() -> Iterator[str]:
    """A key prefix of our own in the machine's Redis; its keys are deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis at {REDIS_URL}", exc)
    prefix = f"dreamrelay-test:{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()
