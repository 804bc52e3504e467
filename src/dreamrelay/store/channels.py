"""Upstream channels: where tasks are sent."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.domain.channel import Channel
from dreamrelay.store.direct import Reads, Sql
from dreamrelay.store.schema import channels


def _channel(row: object) -> Channel:
    return _from_mapping(row._mapping)  # type: ignore[attr-defined]


def _from_mapping(m: Mapping[str, Any]) -> Channel:
    return Channel(
        id=m["id"],
        name=m["name"],
        kind=m["kind"],
        base_url=m["base_url"],
        secret_key=m["secret_key"],
        models=tuple(m["models"]) if m["models"] is not None else None,
        priority=m["priority"],
        weight=m["weight"],
        concurrency=m["concurrency"],
        enabled=m["enabled"],
        failures=m["failures"],
        retry_at=m["retry_at"],
        last_error=m["last_error"],
        media_networks=m["media_networks"],
    )


async def add_channel(
    conn: AsyncConnection,
    *,
    name: str,
    kind: str,
    base_url: str = "",
    secret_key: str = "",
    models: list[str] | None = None,
    priority: int = 0,
    weight: int = 1,
    concurrency: int = 16,
    media_networks: str = "",
) -> int:
    result = await conn.execute(
        insert(channels)
        .values(
            name=name,
            kind=kind,
            base_url=base_url,
            secret_key=secret_key,
            models=models,
            priority=priority,
            weight=weight,
            concurrency=concurrency,
            media_networks=media_networks,
            enabled=True,
            created_at=time.time(),
        )
        .returning(channels.c.id)
    )
    return int(result.scalar_one())


async def list_channels(conn: AsyncConnection) -> list[Channel]:
    return [_channel(r) for r in await conn.execute(select(channels).order_by(channels.c.id))]


_FIELDS = tuple(field.name for field in dataclasses.fields(Channel))  # each a column of `channels`
_LIST = Sql.of(f"SELECT {', '.join(_FIELDS)} FROM channels ORDER BY id")


async def list_channels_on(tx: Reads) -> list[Channel]:
    """`list_channels` on the driver (store/direct.py), for the submit path."""
    found = []
    for row in await tx.rows(_LIST):
        m = dict(zip(_FIELDS, row, strict=True))
        if isinstance(m["models"], str | bytes):  # SQLite keeps JSON as text
            m["models"] = orjson.loads(m["models"])
        m["enabled"] = bool(m["enabled"])
        found.append(_from_mapping(m))
    return found


async def get_channel(conn: AsyncConnection, channel_id: int) -> Channel | None:
    row = (await conn.execute(select(channels).where(channels.c.id == channel_id))).one_or_none()
    return _channel(row) if row else None


CHANNEL_SETTINGS = (
    "name",
    "base_url",
    "secret_key",
    "models",
    "priority",
    "weight",
    "concurrency",
    "enabled",
    "media_networks",
)


async def update_channel(conn: AsyncConnection, channel_id: int, values: dict[str, object]) -> bool:
    unknown = set(values) - set(CHANNEL_SETTINGS)
    if unknown:
        raise ValueError(f"not channel settings: {sorted(unknown)}")
    if values.get("enabled"):
        values = {**values, "failures": 0, "retry_at": None}
    result = await conn.execute(update(channels).where(channels.c.id == channel_id).values(**values))
    return result.rowcount == 1


async def record_success(conn: AsyncConnection, channel_id: int) -> None:
    """Reset the failure count (a write only when there was something to reset)."""
    await conn.execute(
        update(channels)
        .where(channels.c.id == channel_id, channels.c.failures > 0)
        .values(failures=0, retry_at=None)
    )


async def record_failure(
    conn: AsyncConnection, channel_id: int, error: str, *, threshold: int, bench_seconds: float
) -> bool:
    """Count a failure; at `threshold` in a row the channel is benched for `bench_seconds`.

    Returns True when it is benched now.
    """
    await conn.execute(
        update(channels)
        .where(channels.c.id == channel_id)
        .values(failures=channels.c.failures + 1, last_error=error[:500])
    )
    benched = await conn.execute(
        update(channels)
        .where(channels.c.id == channel_id, channels.c.failures >= threshold)
        .values(retry_at=time.time() + bench_seconds)
    )
    return benched.rowcount == 1
