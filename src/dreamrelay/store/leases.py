"""Leases shared by every claimed kind of work (tasks, outbox events): heartbeat and hand-back."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Table, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.store.direct import Sql


async def take(
    conn: AsyncConnection,
    table: Table,
    due: Select[Any],
    *,
    owner: str,
    until: float,
    skip_locked: bool,
    returning: Sequence[ColumnElement[Any]],
) -> Sequence[Row[Any]]:
    """Lease the rows whose ids `due` selects to `owner` until `until`; their `returning` columns.

    With `skip_locked` (PostgreSQL), rows another worker is claiming at this moment are passed over.
    """
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    result = await conn.execute(
        update(table)
        .where(table.c.id.in_(due.scalar_subquery()))
        .values(lease_owner=owner, lease_until=until)
        .returning(*returning)
    )
    return result.all()


def take_on_driver(table: str, due: str, *, skip_locked: bool, returning: str) -> Sql:
    """`take` as one statement for the driver (store/direct.py), for a hot path: its parameters are the
    owner, the lease's end, then those of `due` (SQL selecting the ids to lease)."""
    locking = " FOR UPDATE SKIP LOCKED" if skip_locked else ""
    return Sql.of(
        f"UPDATE {table} SET lease_owner = ?, lease_until = ?"
        f" WHERE id IN ({due}{locking}) RETURNING {returning}"
    )


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
