"""Callback events waiting to be delivered (the outbox) and the log of every delivery attempt."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.store import leases
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


def _event(row: Any) -> Event:
    m = row._mapping
    return Event(
        id=m["id"],
        message_id=m["message_id"],
        task_id=m["task_id"],
        account_id=m["account_id"],
        sequence=m["sequence"],
        state=m["state"],
        url=m["url"],
        payload=bytes(m["payload"]),
        attempts=m["attempts"],
        created_at=m["created_at"],
    )


_EVENT_COLUMNS = [outbox.c[name] for name in Event.__dataclass_fields__]


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


async def lease_due(
    conn: AsyncConnection, *, owner: str, now: float, limit: int, lease_seconds: float, skip_locked: bool
) -> list[Event]:
    """Lease up to `limit` due events in one statement, oldest due first, and only the head of each
    task (its pending event with the lowest sequence): a task's later event is never in flight
    before an earlier one is delivered or dead, so a receiver sees each task's events in order."""
    earlier = outbox.alias("earlier")
    head_of_task = ~exists().where(
        earlier.c.task_id == outbox.c.task_id,
        earlier.c.status == PENDING,
        earlier.c.sequence < outbox.c.sequence,
    )
    due = (
        select(outbox.c.id)
        .where(
            outbox.c.status == PENDING,
            outbox.c.next_attempt_at <= now,
            or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now),
            head_of_task,
        )
        .order_by(outbox.c.next_attempt_at)
        .limit(limit)
    )
    result = await leases.take(
        conn,
        outbox,
        due,
        owner=owner,
        until=now + lease_seconds,
        skip_locked=skip_locked,
        returning=_EVENT_COLUMNS,
    )
    return [_event(r) for r in result]


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt, made and not yet recorded."""

    event: Event
    status_code: int | None
    latency_ms: int
    error: str | None
    outcome: str
    next_attempt_at: float | None


async def record_attempts(conn: AsyncConnection, attempts: Sequence[Attempt], *, owner: str) -> set[int]:
    """Log each attempt and move its event on, for the events whose lease `owner` still holds (the
    others are left alone); returns the ids of the events recorded. Two statements per batch."""
    if not attempts:
        return set()
    held_query = select(outbox.c.id).where(
        outbox.c.id.in_([a.event.id for a in attempts]), outbox.c.lease_owner == owner
    )
    if conn.dialect.name != "sqlite":  # SQLite's writer lock already keeps the rows ours
        held_query = held_query.with_for_update()
    held = set((await conn.execute(held_query)).scalars())
    mine = [a for a in attempts if a.event.id in held]
    if not mine:
        return held
    now = time.time()
    await conn.execute(
        update(outbox)
        .where(outbox.c.id == bindparam("b_id"))
        .values(
            attempts=outbox.c.attempts + 1,
            status=bindparam("b_status"),
            next_attempt_at=bindparam("b_next"),
            last_status=bindparam("b_code"),
            last_error=bindparam("b_error"),
            delivered_at=bindparam("b_delivered"),
            lease_owner=None,
            lease_until=None,
        ),
        [
            {
                "b_id": a.event.id,
                "b_status": a.outcome,
                "b_next": a.next_attempt_at,
                "b_code": a.status_code,
                "b_error": a.error,
                "b_delivered": now if a.outcome == DELIVERED else None,
            }
            for a in mine
        ],
    )
    await conn.execute(
        insert(delivery_attempts),
        [
            {
                "event_id": a.event.id,
                "attempt": a.event.attempts + 1,
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "created_at": now,
            }
            for a in mine
        ],
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
