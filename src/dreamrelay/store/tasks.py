"""Task rows: insert, read, compare-and-set update, and leasing due tasks to a worker."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, ColumnElement, Select, and_, func, literal_column, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.domain.api_format import IMAGE_ACTION, SHARED_VIDEOS, Listing
from dreamrelay.domain.ids import is_id
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.store import in_flight, leases
from dreamrelay.store.direct import Sql, Tx
from dreamrelay.store.filters import in_window
from dreamrelay.store.schema import accounts, channels, tasks

_FIELDS = tuple(Task.__dataclass_fields__)
_COLUMNS = [tasks.c[name] for name in _FIELDS]


def _row(row: Any) -> Task:
    mapping = row._mapping
    data = {name: mapping[name] for name in _FIELDS}
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


# The next change marker: past every row's (the index makes it one lookup). Writes are serialised on
# SQLite, so markers there commit in order; on PostgreSQL two writes may take the same marker or commit
# out of order, which the mirrors' feed covers by reading FEED_LOOKBACK_SECONDS of markers back
# (inflight.py). A write that committed later than half that after taking its marker (it waited for a
# lock, the machine was busy) is marked again once it committed (`mark_again`, services/lifecycle.py):
# a feed read would otherwise have passed its marker before it became visible.
NEXT_CHANGE = "coalesce((SELECT max(change_seq) FROM tasks), 0) + 1"
_NEXT_CHANGE: ColumnElement[int] = literal_column(f"({NEXT_CHANGE})")
FEED_LOOKBACK_SECONDS = 5.0
_MARK_AGAIN = Sql.of(f"UPDATE tasks SET change_seq = {NEXT_CHANGE} WHERE id = ?")


def feed_lookback(is_sqlite: bool) -> float:
    """Seconds of markers each feed read goes back: none on SQLite, where markers commit in order."""
    return 0.0 if is_sqlite else FEED_LOOKBACK_SECONDS


def committed_late(seconds: float) -> bool:
    """Whether a write that committed `seconds` after taking its change marker must be marked again."""
    return seconds > FEED_LOOKBACK_SECONDS / 2


async def mark_again(tx: Tx, task_id: str) -> None:
    """A new change marker for the task, nothing else changed (the feed's readers compare versions)."""
    await tx.run(_MARK_AGAIN, task_id)


@functools.cache
def _insert_sql(names: tuple[str, ...]) -> Sql:
    return Sql.of(
        f"INSERT INTO tasks ({', '.join(names)}, change_seq) "
        f"VALUES ({', '.join('?' * len(names))}, {NEXT_CHANGE})"
    )


async def insert_task(tx: Tx, values: dict[str, Any]) -> None:
    names = tuple(values)
    await tx.run(_insert_sql(names), *(_bound(name, values[name]) for name in names))


@functools.cache
def _bulk_sql(names: tuple[str, ...]) -> Sql:
    return Sql.of(f"INSERT INTO tasks ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})")


async def insert_tasks(tx: Tx, rows: Sequence[dict[str, Any]]) -> None:
    """Many tasks at once (a bulk load: the benchmarks' stores), each row as `insert_task` takes it, with
    each key's in-flight number raised by its rows still in flight, in the same transaction. Their change
    marker stays 0, as for rows written before the feed existed: a mirror reads each from the store on
    first need instead of every process reading the whole load through its feed."""
    if not rows:
        return
    names = tuple(rows[0])
    await tx.run_many(_bulk_sql(names), [[_bound(name, row[name]) for name in names] for row in rows])
    counts: dict[int, int] = {}
    for row in rows:
        key_id = row["api_key_id"]
        if key_id is not None and not TaskState(row["state"]).is_terminal:
            counts[key_id] = counts.get(key_id, 0) + 1
    await in_flight.enter_many(tx, counts)


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


def listed(listing: Listing) -> list[ColumnElement[bool]]:
    """A family's listing rule (domain/api_format.py::Listing.shows) as conditions on the tasks table."""
    conditions: list[ColumnElement[bool]] = [tasks.c.api_format.in_(sorted(f.value for f in listing.formats))]
    if listing.images is not None:
        conditions.append(
            tasks.c.action == IMAGE_ACTION if listing.images else tasks.c.action != IMAGE_ACTION
        )
    return conditions


_SHARED_VIDEOS = listed(SHARED_VIDEOS)


def bodies_statement(task_ids: Sequence[str]) -> Select[Any]:
    """What `get_bodies` asks the store (also explained by the benchmarks): the shared video tasks."""
    return select(tasks.c.id, tasks.c.body, tasks.c.state, tasks.c.account_id).where(
        tasks.c.id.in_(task_ids), tasks.c.deleted_at.is_(None), *_SHARED_VIDEOS
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
        select(*_COLUMNS).where(
            tasks.c.id.in_(task_ids), tasks.c.deleted_at.is_(None), tasks.c.action != IMAGE_ACTION
        )
    )
    return [task for task in map(_row, rows) if task.account_id == account_id]


async def list_video_tasks(
    conn: AsyncConnection,
    account_id: int,
    *,
    limit: int,
    offset: int = 0,
    states: Sequence[str] | None = None,
    after: Task | None = None,
    ascending: bool = False,
    actions: Sequence[str] | None = None,
) -> tuple[list[Task], bool]:
    """A page of the account's video tasks (in `states`, of `actions` if given), newest first (oldest
    first when `ascending`), from the one after `after` when given, and whether more follow."""
    if ascending:
        order = (tasks.c.created_at.asc(), tasks.c.id.asc())
    else:
        order = (tasks.c.created_at.desc(), tasks.c.id.desc())
    query = (
        select(*_COLUMNS)
        .where(
            tasks.c.account_id == account_id,
            tasks.c.deleted_at.is_(None),
            *_SHARED_VIDEOS,
        )
        .order_by(*order)
        .limit(limit + 1)
        .offset(offset)
    )
    if states:
        query = query.where(tasks.c.state.in_(states))
    if actions:
        query = query.where(tasks.c.action.in_(actions))
    if after is not None:
        mark = tuple_(tasks.c.created_at, tasks.c.id)
        query = query.where(
            mark > (after.created_at, after.id) if ascending else mark < (after.created_at, after.id)
        )
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
    result = await conn.execute(update(tasks).where(condition).values(**values, change_seq=_NEXT_CHANGE))
    if result.rowcount != 1:
        return None
    return task.with_values(values)


@functools.cache
def _update_sql(names: tuple[str, ...]) -> Sql:
    assignments = ", ".join(f"{name} = ?" for name in names)
    return Sql.of(f"UPDATE tasks SET {assignments}, change_seq = {NEXT_CHANGE} WHERE id = ? AND version = ?")


async def compare_and_set_on(tx: Tx, task: Task, values: dict[str, Any]) -> Task | None:
    """`compare_and_set` (without a lease) on the driver (store/direct.py), for the submit path."""
    values = {**values, "version": task.version + 1}
    names = tuple(values)
    params = [_bound(name, values[name]) for name in names]
    if await tx.run(_update_sql(names), *params, task.id, task.version) != 1:
        return None
    return task.with_values(values)


def due_statement(
    *,
    now: float,
    limit: int,
    horizon: float = 0.0,
    channel_id: int | None = None,
    skip_channels: Sequence[int] = (),
) -> Select[Any]:
    """The ids `lease_due` claims (its plan is checked by tests/integration/test_due_plan.py): walked
    through the due index (ix_tasks_due) in next-poll order, so a sweep reads the tasks due, never every
    task in flight. The state test is written `state || ''` (a channel's `channel_id + 0`) so no planner
    takes the (state, channel) index, or the channel's, for it: SQLite's prefers an equality to a range,
    and then read and sorted every task in flight on every sweep, inside the write lock (submits waited
    behind it as the tasks in flight grew)."""
    conditions = [
        tasks.c.next_poll_at <= now + horizon,
        tasks.c.state.concat("").in_([TaskState.PENDING.value, TaskState.PROCESSING.value]),
        or_(tasks.c.lease_until.is_(None), tasks.c.lease_until < now),
    ]
    if channel_id is not None:
        conditions.append(tasks.c.channel_id + 0 == channel_id)  # nor the (channel, upstream id) index
    if skip_channels:
        conditions.append(or_(tasks.c.channel_id.is_(None), tasks.c.channel_id.not_in(skip_channels)))
    return select(tasks.c.id).where(*conditions).order_by(tasks.c.next_poll_at).limit(limit)


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
    due = due_statement(
        now=now, limit=limit, horizon=horizon, channel_id=channel_id, skip_channels=skip_channels
    )
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


async def changed_since(conn: AsyncConnection, after: int, limit: int) -> list[tuple[int, Task]]:
    """The first `limit` tasks whose change marker is past `after`, with their markers, in marker order
    (the feed of the in-flight mirrors: one indexed range read)."""
    query = (
        select(tasks.c.change_seq, *_COLUMNS)
        .where(tasks.c.change_seq > after)
        .order_by(tasks.c.change_seq)
        .limit(limit)
    )
    rows = await conn.execute(query)
    return [(r.change_seq, _row(r)) for r in rows]


async def last_change(conn: AsyncConnection) -> int:
    """The highest change marker written so far (0 for none)."""
    return int((await conn.execute(select(func.coalesce(func.max(tasks.c.change_seq), 0)))).scalar_one())


async def next_due_at(conn: AsyncConnection) -> float | None:
    query = (
        select(tasks.c.next_poll_at).where(tasks.c.next_poll_at.is_not(None)).order_by(tasks.c.next_poll_at)
    )
    return (await conn.execute(query.limit(1))).scalar_one_or_none()


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
        # What completed tasks captured (a task billed by use: its charge), what the others hold.
        func.coalesce(func.sum(func.coalesce(tasks.c.charged, tasks.c.price)), 0).label("credits"),
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
