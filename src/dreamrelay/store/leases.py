"""Leases shared by every claimed kind of work (tasks, outbox events): heartbeat and hand-back."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncConnection


async def extend(
    conn: AsyncConnection, table: Table, owner: str, ids: Collection[object], until: float
) -> int:
    """Push the leases `owner` still holds on `ids` to `until`; returns how many it still held."""
    if not ids:
        return 0
    result = await conn.execute(
        update(table).where(table.c.id.in_(list(ids)), table.c.lease_owner == owner).values(lease_until=until)
    )
    return int(result.rowcount)


async def release_all(conn: AsyncConnection, table: Table, owner: str) -> int:
    """Hand back every lease `owner` holds, so other workers may take that work at once."""
    result = await conn.execute(
        update(table).where(table.c.lease_owner == owner).values(lease_owner=None, lease_until=None)
    )
    return int(result.rowcount)
