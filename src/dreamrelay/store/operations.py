"""What operators watch, read straight from the store: work in flight, the outbox, checks, workers.

Every query here is cheap at any size: in-flight tasks through the (state, channel) index, the outbox
through its (status, next attempt) index, and small tables for the rest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.domain.states import ACTIVE_STATES
from dreamrelay.store.schema import channels, checks, outbox, tasks, workers

FORGET_WORKERS_SECONDS = 86400.0


@dataclass(frozen=True)
class InFlight:
    state: str
    channel: str  # the channel's name, or "" before the task is dispatched
    count: int


@dataclass(frozen=True)
class Backlog:
    pending: int  # callback events not yet delivered (nor given up)
    oldest_created_at: float | None


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    checked_at: float


@dataclass(frozen=True)
class WorkerBeat:
    instance: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float


async def tasks_in_flight(conn: AsyncConnection) -> list[InFlight]:
    query = (
        select(tasks.c.state, channels.c.name, func.count())
        .select_from(tasks.outerjoin(channels, channels.c.id == tasks.c.channel_id))
        .where(tasks.c.state.in_([s.value for s in ACTIVE_STATES]))
        .group_by(tasks.c.state, channels.c.name)
    )
    return [InFlight(r[0], r[1] or "", int(r[2])) for r in await conn.execute(query)]


async def outbox_backlog(conn: AsyncConnection) -> Backlog:
    row = (
        await conn.execute(
            select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.status == "pending")
        )
    ).one()
    return Backlog(int(row[0]), row[1])


async def record_check(conn: AsyncConnection, name: str, ok: bool, detail: str = "") -> None:
    now = time.time()
    done = await conn.execute(
        update(checks).where(checks.c.name == name).values(ok=ok, detail=detail[:2000], checked_at=now)
    )
    if done.rowcount == 0:
        await conn.execute(insert(checks).values(name=name, ok=ok, detail=detail[:2000], checked_at=now))


async def last_checks(conn: AsyncConnection) -> list[Check]:
    rows = await conn.execute(select(checks).order_by(checks.c.name))
    return [Check(r.name, bool(r.ok), r.detail, r.checked_at) for r in rows]


async def heartbeat(conn: AsyncConnection, instance: str, host: str, pid: int, started_at: float) -> None:
    """This worker process is alive now (one row per process, refreshed while it runs); rows of
    processes silent for a day (killed, never stopped cleanly) are removed on the way."""
    now = time.time()
    await conn.execute(delete(workers).where(workers.c.heartbeat_at < now - FORGET_WORKERS_SECONDS))
    done = await conn.execute(update(workers).where(workers.c.instance == instance).values(heartbeat_at=now))
    if done.rowcount == 0:
        await conn.execute(
            insert(workers).values(
                instance=instance, host=host[:255], pid=pid, started_at=started_at, heartbeat_at=now
            )
        )


async def forget_worker(conn: AsyncConnection, instance: str) -> None:
    await conn.execute(delete(workers).where(workers.c.instance == instance))


async def live_workers(conn: AsyncConnection, since: float) -> list[WorkerBeat]:
    """Workers that beat since `since`."""
    rows = await conn.execute(
        select(workers).where(workers.c.heartbeat_at >= since).order_by(workers.c.started_at)
    )
    return [WorkerBeat(r.instance, r.host, r.pid, r.started_at, r.heartbeat_at) for r in rows]
