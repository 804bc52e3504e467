"""Read-only views for the web console: its own queries (SQLAlchemy Core), each on a reader connection of
its own; nothing here writes."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.domain.keys import Caller
from dreamrelay.domain.task import Task
from dreamrelay.store import ledger
from dreamrelay.store import tasks as task_store
from dreamrelay.store.accounts import key_by_id
from dreamrelay.store.engine import Database
from dreamrelay.store.schema import accounts, api_keys, tasks

STATES = ("pending", "processing", "completed", "failed")
HOUR = 3600.0


@dataclass(frozen=True)
class SignedInKey:
    """A customer's key, read again on every console request (disabled or expired → signed out)."""

    caller: Caller  # the key's limits, as the API's requests carry them
    account: str
    prefix: str
    disabled: bool
    expires_at: float | None

    @property
    def account_id(self) -> int:
        return self.caller.account_id


async def signed_in_key(db: Database, key_id: int) -> SignedInKey | None:
    async with db.reader() as conn:
        return await _signed_in_key(conn, key_id)


async def _signed_in_key(conn: AsyncConnection, key_id: int) -> SignedInKey | None:
    """The key as the API's authentication reads it (disabled or expired with any key above it)."""
    owner = await key_by_id(conn, key_id)
    query = select(accounts.c.name, api_keys.c.prefix).join(accounts, accounts.c.id == api_keys.c.account_id)
    row = (await conn.execute(query.where(api_keys.c.id == key_id))).one_or_none()
    if owner is None or row is None:
        return None
    return SignedInKey(
        caller=owner.caller,
        account=row.name,
        prefix=row.prefix,
        disabled=owner.disabled,
        expires_at=owner.expires_at,
    )


async def balance(db: Database, account_id: int) -> int:
    async with db.reader() as conn:
        return await _balance(conn, account_id)


async def _balance(conn: AsyncConnection, account_id: int) -> int:
    found = await conn.execute(select(accounts.c.balance).where(accounts.c.id == account_id))
    return int(found.scalar_one_or_none() or 0)


async def own_task(db: Database, account_id: int, task_id: str) -> tuple[Task | None, int]:
    """The account's task (None for any other id, so others' tasks look unknown) and its balance."""
    async with db.reader() as conn:
        task = await task_store.get_task(conn, task_id, account_id)
        return task, await _balance(conn, account_id)


# ---- the operator's dashboard ------------------------------------------------------------------
@dataclass
class Dashboard:
    hours: list[dict[str, Any]]  # 24 buckets, oldest first: {"start": unix, "counts": {state: n}}
    totals: dict[str, int]  # tasks created in the window, per state
    success_rate: float | None  # completed / (completed + failed) of those
    median_seconds: float | None  # created → completed, tasks completed in the window
    revenue_window: int  # credits captured in the window
    revenue_total: int
    in_flight: int
    accounts: int


async def dashboard(db: Database, *, now: float, deadline_seconds: float, hours: int = 24) -> Dashboard:
    async with db.reader() as conn:
        return await _dashboard(conn, now=now, deadline_seconds=deadline_seconds, hours=hours)


async def _dashboard(conn: AsyncConnection, *, now: float, deadline_seconds: float, hours: int) -> Dashboard:
    """The last `hours` whole hours, from the tasks created in them (and before, as far back as a task
    finishing in them can have started) through the (account_id, created_at) index, and the ledger."""
    first_hour = (int(now // HOUR) - hours + 1) * HOUR
    oldest = first_hour - deadline_seconds - HOUR  # an hour's grace for a late deadline sweep
    recent = await conn.execute(
        select(tasks.c.created_at, tasks.c.finished_at, tasks.c.state).where(
            tasks.c.account_id.in_(select(accounts.c.id)), tasks.c.created_at >= oldest
        )
    )
    buckets = {int(first_hour // HOUR) + i: dict.fromkeys(STATES, 0) for i in range(hours)}
    totals = dict.fromkeys(STATES, 0)
    spans = []
    for row in recent:
        slot = buckets.get(int(row.created_at // HOUR))
        if slot is not None and row.state in slot:
            slot[row.state] += 1
            totals[row.state] += 1
        if row.state == "completed" and row.finished_at is not None and row.finished_at >= first_hour:
            spans.append(float(row.finished_at - row.created_at))
    finished = totals["completed"] + totals["failed"]
    in_flight = await conn.execute(
        select(func.count()).select_from(tasks).where(tasks.c.state.in_(("pending", "processing")))
    )
    account_count = await conn.execute(select(func.count()).select_from(accounts))
    return Dashboard(
        hours=[{"start": key * HOUR, "counts": counts} for key, counts in sorted(buckets.items())],
        totals=totals,
        success_rate=totals["completed"] / finished if finished else None,
        median_seconds=statistics.median(spans) if spans else None,
        revenue_window=await ledger.captured(conn, since=first_hour),
        revenue_total=await ledger.captured(conn),
        in_flight=int(in_flight.scalar_one()),
        accounts=int(account_count.scalar_one()),
    )


# ---- task lists ----------------------------------------------------------------------------------
async def account_tasks(
    db: Database, account_id: int, *, before: float | None = None, limit: int = 100
) -> tuple[Sequence[Any], int]:
    """A page of a customer's tasks of every kind, newest first (the rows the grid is drawn from), and
    the account's balance."""
    async with db.reader() as conn:
        return await _cards(conn, account_id, before=before, limit=limit), await _balance(conn, account_id)


async def _cards(
    conn: AsyncConnection, account_id: int, *, before: float | None, limit: int
) -> Sequence[Any]:
    query = select(
        tasks.c.id,
        tasks.c.state,
        tasks.c.created_at,
        tasks.c.model,
        tasks.c.action,
        tasks.c.request,
        tasks.c.media,
        tasks.c.failure_reason,
    ).where(tasks.c.account_id == account_id, tasks.c.deleted_at.is_(None))
    if before is not None:
        query = query.where(tasks.c.created_at < before)
    rows = await conn.execute(query.order_by(tasks.c.created_at.desc()).limit(limit))
    return rows.all()
