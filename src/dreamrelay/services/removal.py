"""A customer deleting a task (official DELETE /generations/{id}).

A running task is failed with "deleted by the customer" (lifecycle releases its hold, its callback
says so) and cancelled upstream where the upstream can; a finished task keeps its money as it is
(a completed task stays paid). Either way the task is hidden from every customer read from then on;
the operator still sees it.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Protocol

from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.media.storage import StorageError
from dreamrelay.services import lifecycle, reads
from dreamrelay.services.auth import Caller
from dreamrelay.services.lifecycle import Change
from dreamrelay.store import channels as channel_store
from dreamrelay.store import tasks as task_store
from dreamrelay.upstreams.base import UpstreamOutcomeUnknown, UpstreamRefused, UpstreamUnavailable

if TYPE_CHECKING:
    from dreamrelay.domain.channel import Channel
    from dreamrelay.media.storage import Storage
    from dreamrelay.upstreams.base import Upstream


class Collaborators(reads.Collaborators, lifecycle.Collaborators, Protocol):
    storage: Storage  # the task's media

    def upstream_for(self, channel: Channel, *, capability: str = ...) -> Upstream: ...


log = logging.getLogger(__name__)

DELETED_REASON = "deleted by the customer"
_INPUT_URL = re.compile(r"/media/(inputs/[A-Za-z0-9][A-Za-z0-9._-]*)$")  # an input image we stored
_ATTEMPTS = 5  # a worker may change the task between our read and our write; then we read again


async def delete_task(rt: Collaborators, caller: Caller, task_id: str) -> None:
    await delete(rt, caller, await reads.get_task(rt, caller, task_id))


async def delete(rt: Collaborators, caller: Caller, found: Task) -> None:
    """Delete the caller's task `found` (as any family read it)."""
    task: Task | None = found
    task_id = found.id
    for _attempt in range(_ATTEMPTS):
        assert task is not None
        was_running = not task.state.is_terminal
        if was_running:
            change = Change(state=TaskState.FAILED, failure_reason=DELETED_REASON, deleted_at=time.time())
        else:
            change = Change(deleted_at=time.time())
        done = await lifecycle.transition(rt, task, change)
        if done is not None:
            await delete_media(rt, done)
            if was_running:
                await cancel_upstream(rt, done)
            return
        async with rt.db.reader() as conn:
            task = await task_store.get_task(conn, task_id, caller.account_id)
        if task is None:
            return  # deleted meanwhile by another request
    raise RuntimeError(f"task {task_id} kept changing; deletion gave up")


def media_keys(task: Task) -> list[str]:
    """Every stored object of the task: its finished media and the input images it was given."""
    keys: list[str] = []

    def walk(value: object, *, finished: bool) -> None:
        if isinstance(value, dict):
            for name, inner in value.items():
                if finished and name == "key" and isinstance(inner, str):
                    keys.append(inner)
                else:
                    walk(inner, finished=finished)
        elif isinstance(value, list):
            for inner in value:
                walk(inner, finished=finished)
        elif isinstance(value, str) and (found := _INPUT_URL.search(value)):
            keys.append(found.group(1))

    walk(task.media or {}, finished=True)
    walk(task.request, finished=False)
    return list(dict.fromkeys(keys))


async def delete_media(rt: Collaborators, task: Task) -> None:
    """Deleted means gone: the objects go (local or S3), so their URLs answer 404. A failure is logged;
    the orphan sweep of the worker removes what is left of the inputs."""
    keys = media_keys(task)
    try:
        await rt.storage.delete(keys)
    except (StorageError, ValueError) as exc:
        log.warning("task %s: deleting its media failed: %s", task.id, exc)


async def cancel_upstream(rt: Collaborators, task: Task) -> None:
    """Best effort: a failure here leaves the upstream generation running (it costs us, not the customer)."""
    if task.channel_id is None or task.upstream_id is None:
        return
    async with rt.db.reader() as conn:
        channel = await channel_store.get_channel(conn, task.channel_id)
    if channel is None:
        return
    try:
        await rt.upstream_for(channel, capability=task.capability).cancel(task.upstream_id)
    except (UpstreamUnavailable, UpstreamRefused, UpstreamOutcomeUnknown) as exc:
        log.warning("task %s: cancelling upstream %s failed: %s", task.id, task.upstream_id, exc)
