"""Callback events waiting to be delivered (the outbox) and the log of every delivery attempt."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.store import leases
from dreamrelay.store.direct import Sql, Tx
from dreamrelay.store.schema import accounts, delivery_attempts, outbox

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


@dataclass(frozen=True)
class Event:
    id: int
    message_id: str
    task_id: str
    account_id: int
    sequence: int
    state: str
    url: str
    payload: bytes
    attempts: int
    created_at: float


_EVENT_COLUMNS = ", ".join(Event.__dataclass_fields__)  # RETURNING/SELECT order = Event's fields


async def enqueue(
    conn: AsyncConnection, *, task_id: str, account_id: int, state: str, url: str, payload: bytes
) -> None:
    """Record the event in the caller's transaction: it exists exactly when the state change does."""
    previous = await conn.execute(select(func.max(outbox.c.sequence)).where(outbox.c.task_id == task_id))
    sequence = int(previous.scalar_one() or 0) + 1
    now = time.time()
    await conn.execute(
        insert(outbox).values(
            message_id=f"msg_{task_id.replace('-', '')}_{sequence}",
            task_id=task_id,
            account_id=account_id,
            sequence=sequence,
            state=state,
            url=url,
            payload=payload,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


# The deliverer's statements run on the driver (store/direct.py): a batch is a few statements, and
# through SQLAlchemy on SQLite each would be several hops to aiosqlite's thread.
_DUE = (
    "SELECT due.id FROM outbox AS due"
    " WHERE due.status = 'pending' AND due.next_attempt_at <= ?"
    " AND (due.lease_until IS NULL OR due.lease_until < ?)"
    # only the head of its task: no earlier event of the task still pending
    " AND NOT EXISTS (SELECT 1 FROM outbox AS earlier WHERE earlier.task_id = due.task_id"
    " AND earlier.status = 'pending' AND earlier.sequence < due.sequence)"
    " ORDER BY due.next_attempt_at LIMIT ?"
)
_LEASE_DUE = {
    skip_locked: leases.take_on_driver("outbox", _DUE, skip_locked=skip_locked, returning=_EVENT_COLUMNS)
    for skip_locked in (False, True)
}


async def lease_due(
    tx: Tx, *, owner: str, now: float, limit: int, lease_seconds: float, skip_locked: bool
) -> list[Event]:
    """Lease up to `limit` due events in one statement, oldest due first, and only the head of each
    task (its pending event with the lowest sequence): a task's later event is never in flight
    before an earlier one is delivered or dead, so a receiver sees each task's events in order.
    With `skip_locked` (PostgreSQL), events another deliverer is leasing at this moment are passed over."""
    rows = await tx.rows(_LEASE_DUE[skip_locked], owner, now + lease_seconds, now, now, limit)
    return [Event(*row) for row in rows]


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt, made and not yet recorded."""

    event: Event
    status_code: int | None
    latency_ms: int
    error: str | None
    outcome: str
    next_attempt_at: float | None


_MOVE_ON = Sql.of(
    "UPDATE outbox SET attempts = attempts + 1, status = ?, next_attempt_at = ?, last_status = ?,"
    " last_error = ?, delivered_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?"
)
_LOG_ATTEMPT = Sql.of(
    "INSERT INTO delivery_attempts (event_id, attempt, status_code, latency_ms, error, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


@functools.cache
def _held(count: int, lock: bool) -> Sql:
    """Which of `count` events `owner` still leases (locked until the transaction ends, on PostgreSQL)."""
    marks = ", ".join("?" * count)
    locking = " FOR UPDATE" if lock else ""
    return Sql.of(f"SELECT id FROM outbox WHERE lease_owner = ? AND id IN ({marks}){locking}")


def _padded(ids: list[int]) -> list[int]:
    """`ids` repeated up to the next power of two: a handful of statement shapes for any batch size, so
    PostgreSQL's prepared statements (one per shape and connection) stay few."""
    size = 1 << (len(ids) - 1).bit_length()
    return ids + [ids[-1]] * (size - len(ids))


async def record_attempts(tx: Tx, attempts: Sequence[Attempt], *, owner: str, lock: bool) -> set[int]:
    """Log each attempt and move its event on, for the events whose lease `owner` still holds (the
    others are left alone); returns the ids of the events recorded. Three statements per batch.
    `lock` (PostgreSQL) locks the held rows first; SQLite's writer lock already keeps them ours."""
    if not attempts:
        return set()
    ids = _padded([a.event.id for a in attempts])
    held = {row[0] for row in await tx.rows(_held(len(ids), lock), owner, *ids)}
    mine = [a for a in attempts if a.event.id in held]
    if not mine:
        return held
    now = time.time()
    await tx.run_many(
        _MOVE_ON,
        [
            (
                a.outcome,
                a.next_attempt_at,
                a.status_code,
                a.error,
                now if a.outcome == DELIVERED else None,
                a.event.id,
            )
            for a in mine
        ],
    )
    await tx.run_many(
        _LOG_ATTEMPT,
        [(a.event.id, a.event.attempts + 1, a.status_code, a.latency_ms, a.error, now) for a in mine],
    )
    return held


async def replay(conn: AsyncConnection, event_ids: Sequence[int]) -> int:
    """Send these events again (same webhook-id, same payload) as soon as a deliverer is free."""
    result = await conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(list(event_ids)))
        .values(status=PENDING, next_attempt_at=time.time(), lease_owner=None, lease_until=None)
    )
    return int(result.rowcount)


async def list_events(
    conn: AsyncConnection,
    *,
    task_id: str | None = None,
    account_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    query = select(
        outbox.c.id,
        outbox.c.message_id,
        outbox.c.task_id,
        outbox.c.sequence,
        outbox.c.state,
        outbox.c.url,
        outbox.c.status,
        outbox.c.attempts,
        outbox.c.last_status,
        outbox.c.last_error,
        outbox.c.next_attempt_at,
        outbox.c.created_at,
        outbox.c.delivered_at,
        accounts.c.name.label("account"),
    ).join(accounts, accounts.c.id == outbox.c.account_id)
    if task_id is not None:
        query = query.where(outbox.c.task_id == task_id)
    if account_id is not None:
        query = query.where(outbox.c.account_id == account_id)
    if status is not None:
        query = query.where(outbox.c.status == status)
    rows = await conn.execute(query.order_by(outbox.c.id.desc()).limit(limit).offset(offset))
    return [dict(r._mapping) for r in rows]


async def list_attempts(conn: AsyncConnection, event_id: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(delivery_attempts)
        .where(delivery_attempts.c.event_id == event_id)
        .order_by(delivery_attempts.c.id)
    )
    return [dict(r._mapping) for r in rows]
