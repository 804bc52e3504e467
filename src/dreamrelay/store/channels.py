"""Upstream channels: where tasks are sent."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.store.schema import channels


@dataclass(frozen=True)
class Channel:
    id: int
    name: str
    kind: str
    base_url: str
    secret_key: str
    models: tuple[str, ...] | None
    priority: int
    weight: int
    concurrency: int
    enabled: bool

    def serves(self, model: str) -> bool:
        return self.models is None or model in self.models


def _channel(row: object) -> Channel:
    m = row._mapping  # type: ignore[attr-defined]
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
            enabled=True,
            created_at=time.time(),
        )
        .returning(channels.c.id)
    )
    return int(result.scalar_one())


async def list_channels(conn: AsyncConnection) -> list[Channel]:
    return [_channel(r) for r in await conn.execute(select(channels).order_by(channels.c.id))]


async def get_channel(conn: AsyncConnection, channel_id: int) -> Channel | None:
    row = (await conn.execute(select(channels).where(channels.c.id == channel_id))).one_or_none()
    return _channel(row) if row else None
