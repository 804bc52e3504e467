"""Upstream calling us back: a per-task secret in the URL proves the sender; the report moves the task on.

Polling stays as the safety net, so a lost callback only costs time. A forged token changes nothing
(404); a stale or replayed report changes nothing either (states only move forward).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import TYPE_CHECKING, Any

from dreamrelay.domain.errors import InvalidRequest, TaskNotFound
from dreamrelay.domain.states import can_move
from dreamrelay.services import follow
from dreamrelay.services.submit import CALLBACK_SAFETY_POLL_SECONDS
from dreamrelay.store import tasks as task_store
from dreamrelay.upstreams.base import UpstreamStatus
from dreamrelay.upstreams.luma import parse_generation

if TYPE_CHECKING:
    from dreamrelay.runtime import Runtime

log = logging.getLogger(__name__)


# Upstream may call back before our submit has recorded its answer (the generation id): wait that long.
DISPATCH_WAIT_SECONDS = 5.0
DISPATCH_WAIT_STEP_SECONDS = 0.05


async def receive(rt: Runtime, task_id: str, token: str, payload: Any) -> bool:
    """Check and apply one callback; True if it moves the task (applied in the background)."""
    task = await _dispatched_task(rt, task_id)
    valid = (
        task is not None
        and task.upstream_token is not None
        and hmac.compare_digest(token.encode(), task.upstream_token.encode())
    )
    if not valid or task is None:
        raise TaskNotFound("unknown callback")
    if task.upstream_id is None:
        return False  # the submission never recorded an id: nothing to match the report to
    if not isinstance(payload, dict) or payload.get("id") != task.upstream_id:
        raise InvalidRequest("the callback does not describe this task's generation")
    status = parse_generation(payload)
    if not can_move(task.state, status.state):
        return False
    if task.id in rt.callbacks_in_hand:
        # A report is being applied: this one (a retry, or the next state) is applied right after it.
        rt.callbacks_waiting[task.id] = status
        return False
    rt.callbacks_in_hand.add(task.id)
    job = asyncio.create_task(_apply(rt, task, status))
    rt.background.add(job)
    job.add_done_callback(rt.background.discard)
    return True


async def _dispatched_task(rt: Runtime, task_id: str) -> task_store.TaskRow | None:
    """The task, once its submission has recorded the upstream id (or as it is after a short wait).

    Applying a report first would bump the task's version and make the submit lose its write.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DISPATCH_WAIT_SECONDS
    while True:
        async with rt.db.reader() as conn:
            task = await task_store.get_task(conn, task_id)
        if task is None or task.upstream_id is not None or task.state.is_terminal or loop.time() > give_up:
            return task
        await asyncio.sleep(DISPATCH_WAIT_STEP_SECONDS)


async def _apply(rt: Runtime, task: task_store.TaskRow, status: UpstreamStatus) -> None:
    current: task_store.TaskRow | None = task
    report: UpstreamStatus | None = status
    try:
        while current is not None and report is not None:
            if can_move(current.state, report.state):
                # Upstream keeps calling back: the next poll is only the safety net for a lost callback.
                await follow.apply_status(rt, current, report, None, poll_floor=CALLBACK_SAFETY_POLL_SECONDS)
            report = rt.callbacks_waiting.pop(task.id, None)
            if report is not None:
                async with rt.db.reader() as conn:
                    current = await task_store.get_task(conn, task.id)
    except Exception:
        log.exception("applying an upstream callback for task %s failed; polling will catch up", task.id)
    finally:
        rt.callbacks_in_hand.discard(task.id)
        rt.callbacks_waiting.pop(task.id, None)
