"""Task rows: insert, read, compare-and-set update, and leasing due tasks to a worker."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Select, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.domain.ids import is_id
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import AGENTS_FORMAT, IMAGE_ACTION, Task
from dreamrelay.store import leases
from dreamrelay.store.direct import Reads, Sql, Tx
from dreamrelay.store.filters import in_window
from dreamrelay.store.schema import accounts, channels, tasks

_COLUMNS = [tasks.c[name] for name in Task.__dataclass_fields__]


def _row(row: Any) -> Task:
    data = dict(row._mapping)
    data["state"] = TaskState(data["state"])
    data["body"] = bytes(data["body"])
    return Task(**data)


_JSON_COLUMNS = frozenset(c.name for c in tasks.columns if isinstance(c.type, JSON))


def _bound(name: str, value: Any) -> Any:
    """A value as the driver takes it (store/direct.py): JSON columns as text, states by their value."""
    if value is None:
        return None
    if name in _JSON_COLUMNS:
        return orjson.dumps(value).decode()
    if isinstance(value, TaskState):
        return value.value
    return value


@functools.cache
def _insert_sql(names: tuple[str, ...]) -> Sql:
    return Sql.of(f"INSERT INTO tasks ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})")


async def insert_task(tx: Tx, values: dict[str, Any]) -> None:
    names = tuple(values)
    await tx.run(_insert_sql(names), *(_bound(name, values[name]) for name in names))


async def get_task(conn: AsyncConnection, task_id: str, account_id: int | None = None) -> Task | None:
    """The task; with `account_id`, only if that account owns it and has not deleted it (customer reads).

    A malformed id (domain/ids.py) is not found without asking the database.
    """
    if not is_id(task_id):
        return None
    query = select(*_COLUMNS).where(tasks.c.id == task_id)
    if account_id is not None:
        query = query.where(tasks.c.account_id == account_id, tasks.c.deleted_at.is_(None))
    row = (await conn.execute(query)).one_or_none()
    return _row(row) if row else None


def bodies_statement(task_ids: Sequence[str]) -> Select[Any]:
    """What `get_bodies` asks the store (also explained by the benchmarks)."""
    return select(tasks.c.id, tasks.c.body, tasks.c.state, tasks.c.account_id).where(
        tasks.c.id.in_(task_ids),
        tasks.c.deleted_at.is_(None),
        tasks.c.action != IMAGE_ACTION,
        tasks.c.api_format != AGENTS_FORMAT,
    )


async def get_bodies(
    conn: AsyncConnection, task_ids: Sequence[str], account_id: int
) -> dict[str, tuple[bytes, bool]]:
    """Pre-encoded own-format objects of the video tasks in `task_ids` that `account_id` owns and kept,
    and whether each is finished: one primary-key lookup per id.

    The owner is checked here rather than in SQL: with `account_id = ?` in the statement SQLite's
    planner walks the (account_id, created_at) index, every task of the account, instead of the
    primary key — 20 ms for 100 ids once an account has 10,000 tasks.
    """
    task_ids = [i for i in task_ids if is_id(i)]
    if not task_ids:
        return {}
    rows = await conn.execute(bodies_statement(task_ids))
    return {r.id: (bytes(r.body), TaskState(r.state).is_terminal) for r in rows if r.account_id == account_id}


async def find_video_tasks(conn: AsyncConnection, task_ids: Sequence[str], account_id: int) -> list[Task]:
    """The video tasks in `task_ids` that `account_id` owns and kept (any order; owner checked here, as
    in `get_bodies`)."""
    rows = await conn.execute(
        select(tasks).where(
            tasks.c.id.in_(task_ids), tasks.c.deleted_at.is_(None), tasks.c.action != IMAGE_ACTION
        )
    )
    return [task for task in map(_row, rows) if task.account_id == account_id]


async def list_video_tasks(
    conn: AsyncConnection, account_id: int, *, limit: int, offset: int, states: Sequence[str] | None = None
) -> tuple[list[Task], bool]:
    """A page of the account's video tasks (in `states` if given), newest first, and whether more follow."""
    query = (
        select(*_COLUMNS)
        .where(
            tasks.c.account_id == account_id,
            tasks.c.deleted_at.is_(None),
            tasks.c.action != IMAGE_ACTION,
            tasks.c.api_format != AGENTS_FORMAT,
        )
        .order_by(tasks.c.created_at.desc(), tasks.c.id.desc())
        .limit(limit + 1)
        .offset(offset)
    )
    if states:
        query = query.where(tasks.c.state.in_(states))
    rows = [_row(r) for r in await conn.execute(query)]
    return rows[:limit], len(rows) > limit


async def compare_and_set(
    conn: AsyncConnection, task: Task, values: dict[str, Any], *, lease_owner: str | None = None
) -> Task | None:
    """Apply `values` only if the row is still at `task.version` (and, if given, leased by `lease_owner`).

    Returns the updated row, or None when someone else changed the task first.
    """
    values = {**values, "version": task.version + 1}
    condition = and_(tasks.c.id == task.id, tasks.c.version == task.version)
    if lease_owner is not None:
        condition = and_(condition, tasks.c.lease_owner == lease_owner)
    result = await conn.execute(update(tasks).where(condition).values(**values))
    if result.rowcount != 1:
        return None
    return task.with_values(values)


@functools.cache
def _update_sql(names: tuple[str, ...]) -> Sql:
    assignments = ", ".join(f"{name} = ?" for name in names)
    return Sql.of(f"UPDATE tasks SET {assignments} WHERE id = ? AND version = ?")


async def compare_and_set_on(tx: Tx, task: Task, values: dict[str, Any]) -> Task | None:
    """`compare_and_set` (without a lease) on the driver (store/direct.py), for the submit path."""
    values = {**values, "version": task.version + 1}
    names = tuple(values)
    params = [_bound(name, values[name]) for name in names]
    if await tx.run(_update_sql(names), *params, task.id, task.version) != 1:
        return None
    return task.with_values(values)


async def lease_due(
    conn: AsyncConnection,
    *,
    owner: str,
    now: float,
    limit: int,
    lease_seconds: float,
    skip_locked: bool,
    horizon: float = 0.0,
    channel_id: int | None = None,
    skip_channels: Sequence[int] = (),
) -> list[Task]:
    """Claim up to `limit` unleased active tasks due by now + `horizon` for `owner` until now + lease_seconds.

    The horizon lets one sweep take tasks that are nearly due, so they share batched polls; with
    `channel_id`, only that channel's tasks; tasks of `skip_channels` are left for a later sweep.
    """
    conditions = [
        tasks.c.next_poll_at <= now + horizon,
        tasks.c.state.in_([TaskState.PENDING, TaskState.PROCESSING]),
        or_(tasks.c.lease_until.is_(None), tasks.c.lease_until < now),
    ]
    if channel_id is not None:
        conditions.append(tasks.c.channel_id == channel_id)
    if skip_channels:
        conditions.append(or_(tasks.c.channel_id.is_(None), tasks.c.channel_id.not_in(skip_channels)))
    due = select(tasks.c.id).where(*conditions).order_by(tasks.c.next_poll_at).limit(limit)
    result = await leases.take(
        conn, tasks, due, owner=owner, until=now + lease_seconds, skip_locked=skip_locked, returning=_COLUMNS
    )
    return [_row(r) for r in result]


async def release_lease(conn: AsyncConnection, task_id: str, owner: str, values: dict[str, Any]) -> bool:
    """Give a leased task back with `values` (e.g. its next poll time); False if the lease was lost."""
    result = await conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.lease_owner == owner)
        .values(lease_owner=None, lease_until=None, **values)
    )
    return result.rowcount == 1


async def next_due_at(conn: AsyncConnection) -> float | None:
    query = (
        select(tasks.c.next_poll_at).where(tasks.c.next_poll_at.is_not(None)).order_by(tasks.c.next_poll_at)
    )
    return (await conn.execute(query.limit(1))).scalar_one_or_none()


_IN_FLIGHT = Sql.of(
    "SELECT count(*) FROM (SELECT 1 FROM tasks WHERE api_key_id = ? AND state IN (?, ?) LIMIT ?) AS held"
)


async def count_in_flight(tx: Reads, api_key_id: int, *, up_to: int) -> int:
    """The key's tasks pending or processing, counted no further than `up_to` (a limit check needs no
    more, and a key far over its limit then costs what one at its limit costs)."""
    pending, processing = TaskState.PENDING.value, TaskState.PROCESSING.value
    rows = await tx.rows(_IN_FLIGHT, api_key_id, pending, processing, up_to)
    return int(rows[0][0])


async def usage(
    conn: AsyncConnection,
    *,
    account_id: int | None = None,
    since: float | None = None,
    until: float | None = None,
) -> list[dict[str, Any]]:
    """Tasks and credits per account, model and state over a period of creation times."""
    query = select(
        tasks.c.account_id,
        tasks.c.model,
        tasks.c.state,
        func.count().label("tasks"),
        func.coalesce(func.sum(tasks.c.price), 0).label("credits"),
    ).group_by(tasks.c.account_id, tasks.c.model, tasks.c.state)
    if account_id is not None:
        query = query.where(tasks.c.account_id == account_id)
    query = in_window(query, tasks.c.created_at, since, until)
    rows = await conn.execute(query.order_by(tasks.c.account_id, tasks.c.model, tasks.c.state))
    return [dict(r._mapping) for r in rows]


async def listing(
    conn: AsyncConnection,
    *,
    state: str | None,
    account: str | None,
    channel_id: int | None,
    since: float | None,
    until: float | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """The operator's task list, newest first, with the account's and the channel's names."""
    query = select(
        tasks.c.id,
        accounts.c.name.label("account"),
        tasks.c.state,
        tasks.c.model,
        tasks.c.action,
        tasks.c.channel_id,
        tasks.c.upstream_id,
        tasks.c.price,
        tasks.c.created_at,
        tasks.c.finished_at,
        tasks.c.failure_reason,
        tasks.c.poll_count,
        channels.c.name.label("channel"),
    ).join(accounts, accounts.c.id == tasks.c.account_id)
    query = query.outerjoin(channels, channels.c.id == tasks.c.channel_id)
    if state:
        query = query.where(tasks.c.state == state)
    if account:
        query = query.where(accounts.c.name == account)
    if channel_id is not None:
        query = query.where(tasks.c.channel_id == channel_id)
    query = in_window(query, tasks.c.created_at, since, until)
    rows = await conn.execute(query.order_by(tasks.c.created_at.desc()).limit(limit).offset(offset))
    return [dict(r._mapping) for r in rows]
