"""The only writer of a task: checks the transition, re-encodes the body, settles the money, queues the
callback, all in the caller's transaction; once it commits, the effects every change has (waking the
deliverer and the follower, counting finished tasks, forgetting cached bodies), each in one place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay import metrics
from dreamrelay.body_cache import BodyCache
from dreamrelay.domain.failures import public_reason
from dreamrelay.domain.states import Settlement, TaskState, check_transition, settlement
from dreamrelay.domain.task import Task
from dreamrelay.formats.families import family_of
from dreamrelay.inflight import InFlightMirror
from dreamrelay.store import in_flight, ledger, outbox
from dreamrelay.store import tasks as task_store
from dreamrelay.store.engine import Database, on_connection

log = logging.getLogger(__name__)


class Collaborators(Protocol):
    """What a transition needs from the process around it."""

    db: Database
    body_cache: BodyCache
    inflight: InFlightMirror
    wake_worker: asyncio.Event
    wake_deliverer: asyncio.Event

    @property
    def media_base_url(self) -> str: ...


@dataclass(frozen=True)
class Change:
    """What one write does to a task; a field left None keeps its value."""

    state: TaskState | None = None
    failure_reason: str | None = None
    failure_code: str | None = None  # the Agents API's machine-readable reason of a failure
    channel_id: int | None = None
    upstream_id: str | None = None
    upstream_state: str | None = None
    next_poll_at: float | None = None
    poll_count: int | None = None
    poll_errors: int | None = None
    media: dict[str, Any] | None = None
    deleted_at: float | None = None
    usage_tokens: int | None = None  # what upstream said the task used
    charged: int | None = None  # what its completion captures (≤ its price; the rest is released)

    def values(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if value is not None}


def encode_body(task: Task, media_base_url: str) -> bytes:
    """What the `body` column keeps, as the task's family encodes it (formats/families.py): Kling's data
    object for images, the Agents API's Generation, the own-format object for every shared video task
    (whatever format created it, so the own batch query stays a byte join)."""
    return family_of(task).encode_body(task, media_base_url)


def callback_payload(task: Task, media_base_url: str) -> bytes:
    """The object the task's GET returns in the format it was created with."""
    return family_of(task).callback_payload(task, media_base_url)


@dataclass(frozen=True)
class _Done:
    before: Task
    after: Task
    change: Change
    by_follower: bool


class Transitions:
    """The task changes of one transaction (`conn`); see `transaction`."""

    def __init__(self, conn: AsyncConnection, media_base_url: str) -> None:
        self.conn = conn
        self._media_base_url = media_base_url
        self._done: list[_Done] = []
        self.marked_at: float | None = None  # when its first task write took a change marker (monotonic)

    async def apply(self, task: Task, change: Change, *, lease_owner: str | None = None) -> Task | None:
        """Change `task` if nobody changed it first; None if we lost the race.

        With `lease_owner`, the write only counts while that worker still holds the lease, and the lease
        is handed back in the same statement. Raises IllegalTransition for a move the table forbids.
        """
        if self.marked_at is None:
            self.marked_at = time.monotonic()
        updated = await _write(self.conn, task, change, self._media_base_url, lease_owner)
        if updated is not None:
            self._done.append(_Done(task, updated, change, lease_owner is not None))
        return updated


@asynccontextmanager
async def transaction(deps: Collaborators) -> AsyncIterator[Transitions]:
    """One transaction for task changes (and whatever else the caller writes on `.conn`); the changes'
    effects run once, after it commits, and never when it rolls back."""
    async with deps.db.transaction() as conn:
        unit = Transitions(conn, deps.media_base_url)
        yield unit
    for done in unit._done:
        _after_commit(deps, done)
    if unit._done and unit.marked_at is not None:
        await mark_again_if_late(deps, [done.after.id for done in unit._done], unit.marked_at)


async def transition(
    deps: Collaborators, task: Task, change: Change, *, lease_owner: str | None = None
) -> Task | None:
    """`change` applied to `task` in a transaction of its own; None if the task changed first."""
    async with transaction(deps) as unit:
        return await unit.apply(task, change, lease_owner=lease_owner)


def _after_commit(deps: Collaborators, done: _Done) -> None:
    before, after = done.before, done.after
    deps.inflight.keep(after)  # this process's reads show the change at once (others' within the bound)
    if after.state is not before.state:
        _log_change(before, after)
        if after.callback_url:
            deps.wake_deliverer.set()  # its callback is in the outbox now
        if after.state.is_terminal:
            metrics.TASKS_FINISHED.labels(after.state.value).inc()
    if done.change.deleted_at is not None:
        deps.body_cache.forget(after.id)
    if done.change.next_poll_at is not None and not done.by_follower:
        deps.wake_worker.set()  # someone else moved its next poll: the follower looks again


async def record_on_driver(deps: Collaborators, task: Task, change: Change) -> Task | None:
    """`transition` for a change that keeps the task's state (where dispatch sent it), on the driver
    (store/direct.py): nothing settles and no callback is queued by such a change. None if the task
    changed first."""
    values, moves = _values(task, change, deps.media_base_url, None)
    if moves:
        raise ValueError("record_on_driver cannot change a task's state; use transition")
    marked_at = time.monotonic()
    async with deps.db.direct_autocommit(rerun_safe=True) as tx:  # one conditional UPDATE
        updated = await task_store.compare_and_set_on(tx, task, values)
    if updated is not None:
        _after_commit(deps, _Done(task, updated, change, by_follower=False))
        await mark_again_if_late(deps, [task.id], marked_at)
    return updated


MARK_AGAIN_TRIES = 3


async def mark_again_if_late(deps: Collaborators, task_ids: list[str], marked_at: float) -> None:
    """After a commit that wrote `task_ids`, its markers taken at `marked_at` (monotonic), and after its
    effects in this process: on PostgreSQL, a write that committed long after it took its change marker
    gets a new one, so no other process's change feed has passed it already (store/tasks.py,
    inflight.py). Markers commit in order on SQLite. If the store fails meanwhile, other processes'
    mirrors may show the task as it was until it next changes (logged)."""
    if not task_store.feed_lookback(deps.db.is_sqlite):
        return
    tries = 0
    while task_store.committed_late(time.monotonic() - marked_at):
        if tries == MARK_AGAIN_TRIES:
            log.warning("tasks %s were marked again %d times and still committed late", task_ids, tries)
            return
        tries += 1
        marked_at = time.monotonic()
        try:
            async with deps.db.direct_autocommit() as tx:
                for task_id in task_ids:
                    await task_store.mark_again(tx, task_id)
        except Exception as exc:
            log.warning("tasks %s committed late and could not be marked again: %r", task_ids, exc)
            return


def _values(
    task: Task, change: Change, media_base_url: str, lease_owner: str | None
) -> tuple[dict[str, Any], bool]:
    """The columns `change` writes (the body re-encoded), and whether it moves the task's state."""
    now = time.time()
    values = change.values()
    state = change.state
    moves = state is not None and state is not task.state
    if moves:
        assert state is not None
        check_transition(task.state, state)
        if state.is_terminal:
            values.update(finished_at=now, next_poll_at=None)
    else:
        values.pop("state", None)
    if lease_owner is not None or "finished_at" in values:  # a finished task is nobody's work
        values.update(lease_owner=None, lease_until=None)
    values["updated_at"] = now
    columns = family_of(task).body_columns
    if columns is None or not columns.isdisjoint(values):
        values["body"] = encode_body(task.with_values(values), media_base_url)
    # else: the body is made of none of the columns this change writes (the dispatch's channel,
    # upstream id and next poll): the stored body stays as it is, byte for byte. Kling's and the Agents
    # API's bodies also show times, so theirs are re-encoded on every change.
    return values, moves


async def _write(
    conn: AsyncConnection, task: Task, change: Change, media_base_url: str, lease_owner: str | None
) -> Task | None:
    values, moves = _values(task, change, media_base_url, lease_owner)
    updated = await task_store.compare_and_set(conn, task, values, lease_owner=lease_owner)
    if updated is not None and moves:
        await _settle(conn, updated)
        if updated.state.is_terminal:  # states only move forward: it leaves once
            await in_flight.leave(on_connection(conn), updated.api_key_id)
        if updated.callback_url and family_of(updated).calls_back(updated.state):
            # Same transaction as the state change: no change without its event, no event without it.
            await outbox.enqueue(
                conn,
                task_id=updated.id,
                account_id=updated.account_id,
                state=updated.state.value,
                url=updated.callback_url,
                payload=callback_payload(updated, media_base_url),
            )
    return updated


def _log_change(before: Task, after: Task) -> None:
    reason = f": {after.failure_reason}" if after.failure_reason and after.state is TaskState.FAILED else ""
    log.info(
        "task %s: %s → %s (channel_id %s, upstream %s)%s",
        after.id,
        before.state.value,
        after.state.value,
        after.channel_id,
        after.upstream_id,
        reason,
        extra={"task_id": after.id},
    )


async def _settle(conn: AsyncConnection, task: Task) -> None:
    """A terminal state settles the hold: captured on success (the part used, `charged`, when the task
    is billed by use: the rest released in the same transaction), released otherwise (unique per task)."""
    effect = settlement(task.state)
    if effect is Settlement.CAPTURE:
        await ledger.capture(
            on_connection(conn),
            account_id=task.account_id,
            key_id=task.api_key_id,
            task_id=task.id,
            amount=task.price,
            charge=task.charged,
        )
    elif effect is Settlement.RELEASE:
        await ledger.release(
            on_connection(conn),
            account_id=task.account_id,
            key_id=task.api_key_id,
            task_id=task.id,
            amount=task.price,
            note=(public_reason(task.failure_reason) or "")[:200],
        )
