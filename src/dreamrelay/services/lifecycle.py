"""The only writer of a task's state: checks the transition, re-encodes the body, settles the money."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.domain.failures import public_reason
from dreamrelay.domain.states import TaskState, check_transition
from dreamrelay.formats import acedata, agents, kling, official
from dreamrelay.formats.own import encode_task
from dreamrelay.store import ledger, outbox
from dreamrelay.store import tasks as task_store
from dreamrelay.store.engine import after_commit
from dreamrelay.store.tasks import TaskRow

OFFICIAL_FORMAT = "official"
ACEDATA_FORMAT = "acedata"

log = logging.getLogger(__name__)


def encode_body(task: TaskRow, media_base_url: str) -> bytes:
    """What the `body` column keeps: Kling's data object for images, the own-format object for videos
    (whatever format created them, so the own batch query stays a byte join)."""
    if task.is_image:
        return kling.encode_data(task, media_base_url)
    if task.is_agents:
        return agents.encode_generation(task, media_base_url)
    return encode_task(
        task_id=task.id,
        created_at=task.created_at,
        request=task.request,
        state=task.state,
        failure_reason=task.failure_reason,
        media=task.media,
        media_base_url=media_base_url,
    )


def callback_payload(task: TaskRow, media_base_url: str) -> bytes:
    """The object the task's GET returns in the format it was created with."""
    if task.is_image:
        return kling.envelope(task.body)
    if task.is_agents:
        return task.body
    if task.api_format == OFFICIAL_FORMAT:
        return official.encode_generation(task, media_base_url)
    if task.api_format == ACEDATA_FORMAT:
        return acedata.encode_result(task, media_base_url)
    return task.body


async def update(
    conn: AsyncConnection,
    task: TaskRow,
    media_base_url: str,
    *,
    state: TaskState | None = None,
    lease_owner: str | None = None,
    **values: Any,
) -> TaskRow | None:
    """Change `task` (and maybe its state) if nobody changed it first; None if we lost the race.

    With `lease_owner`, the write only counts while that worker still holds the lease, and the lease
    is handed back in the same statement.
    """
    now = time.time()
    if state is not None and state != task.state:
        check_transition(task.state, state)
        values["state"] = state
        if state.is_terminal:
            values.update(finished_at=now, next_poll_at=None)
    if lease_owner is not None or "finished_at" in values:  # a finished task is nobody's work
        values.update(lease_owner=None, lease_until=None)
    values["updated_at"] = now
    changed = task.with_values(values)
    values["body"] = encode_body(changed, media_base_url)
    updated = await task_store.compare_and_set(conn, task, values, lease_owner=lease_owner)
    if updated is not None and state is not None and state != task.state:
        after_commit(conn, lambda: _log_change(task, updated))
        await _settle(conn, updated)
        if updated.callback_url:
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


def _log_change(before: TaskRow, after: TaskRow) -> None:
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


async def _settle(conn: AsyncConnection, task: TaskRow) -> None:
    """A terminal state settles the hold: captured on success, released otherwise (unique per task)."""
    if task.state is TaskState.COMPLETED:
        await ledger.capture(conn, account_id=task.account_id, task_id=task.id, amount=task.price)
    elif task.state is TaskState.FAILED:
        await ledger.release(
            conn,
            account_id=task.account_id,
            key_id=task.api_key_id,
            task_id=task.id,
            amount=task.price,
            note=(public_reason(task.failure_reason) or "")[:200],
        )
