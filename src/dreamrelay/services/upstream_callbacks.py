"""Upstream calling us back: a per-task secret in the URL proves the sender; the report moves the task on.

Polling stays as the safety net, so a lost callback only costs time. A forged token changes nothing
(404); a stale or replayed report changes nothing either (states only move forward).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import TYPE_CHECKING, Any, Protocol

from dreamrelay import logs
from dreamrelay.domain.errors import InvalidRequest, TaskNotFound
from dreamrelay.domain.states import can_move
from dreamrelay.domain.task import Task
from dreamrelay.domain.timings import CALLBACK_SAFETY_POLL_SECONDS
from dreamrelay.services import follow
from dreamrelay.store import tasks as task_store
from dreamrelay.store.channels import get_channel
from dreamrelay.store.outage import described, is_outage
from dreamrelay.upstreams import kinds
from dreamrelay.upstreams.base import UpstreamStatus

if TYPE_CHECKING:
    from dreamrelay.locks import KeyedLocks


class Collaborators(follow.Collaborators, Protocol):
    background: set[asyncio.Task[None]]  # reports are applied after the answer, awaited on close
    callback_locks: KeyedLocks  # one report at a time per task


log = logging.getLogger(__name__)


# Upstream may call back before our submit has recorded its answer (the generation id): wait that long.
DISPATCH_WAIT_SECONDS = 5.0
DISPATCH_WAIT_STEP_SECONDS = 0.05


async def receive(rt: Collaborators, task_id: str, token: str, payload: Any) -> bool:
    """Check and apply one callback; True if it may move the task (applied in the background)."""
    async with rt.db.reader() as conn:
        task = await task_store.get_task(conn, task_id)
    expected = (task.upstream_token or "") if task is not None else ""
    if task is None or not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise TaskNotFound("unknown callback")
    if task.upstream_id is None and not task.state.is_terminal:
        task = await _dispatched_task(rt, task)
    if task.upstream_id is None:
        return False  # the submission never recorded an id: nothing to match the report to
    async with rt.db.reader() as conn:
        channel = await get_channel(conn, task.channel_id) if task.channel_id else None
    # The channel's kind says how its upstream reports (upstreams/kinds.py: `reports`).
    read = kinds.report_reader(channel, task.capability) if channel is not None else None
    status = read(payload, task.upstream_id) if read is not None else None
    if status is None:
        raise InvalidRequest("the callback does not describe this task's generation")
    if not can_move(task.state, status.state):
        return False
    job = asyncio.create_task(_apply(rt, task.id, status))
    rt.background.add(job)
    job.add_done_callback(rt.background.discard)
    return True


async def _dispatched_task(rt: Collaborators, task: Task) -> Task:
    """The task once its submission has recorded the upstream id (or as it is after a short wait).

    Applying a report first would bump the task's version and make the submit lose its write.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DISPATCH_WAIT_SECONDS
    while task.upstream_id is None and not task.state.is_terminal and loop.time() < give_up:
        await asyncio.sleep(DISPATCH_WAIT_STEP_SECONDS)
        async with rt.db.reader() as conn:
            task = await task_store.get_task(conn, task.id) or task
    return task


async def _apply(rt: Collaborators, task_id: str, status: UpstreamStatus) -> None:
    """Reports for one task are applied one at a time, each to the task as it is by then.

    Upstream sends a report per state change and may retry quickly; a report that no longer moves
    the task (a retry, or one overtaken by a newer report) changes nothing.
    """
    async with rt.callback_locks.hold(task_id):
        try:
            async with rt.db.reader() as conn:
                task = await task_store.get_task(conn, task_id)
                channel = await get_channel(conn, task.channel_id) if task and task.channel_id else None
            if task is not None and can_move(task.state, status.state):
                with logs.task_context(task.id, channel.name if channel else None):
                    await follow.apply_status(rt, task, status, None, poll_floor=CALLBACK_SAFETY_POLL_SECONDS)
        except Exception as exc:
            if not is_outage(exc):
                log.exception(
                    "applying an upstream callback for task %s failed; polling will catch up", task_id
                )
            else:
                log.warning(
                    "database unavailable: upstream callback for task %s left to polling: %s",
                    task_id,
                    described(exc),
                )
