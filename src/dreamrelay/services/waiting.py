"""Synchronous answers: wait until a task has finished, up to a bound, then read it as it stands."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Protocol

from dreamrelay.domain.task import Task
from dreamrelay.services import reads
from dreamrelay.services.auth import Caller

if TYPE_CHECKING:
    from dreamrelay.settings import Settings


class Collaborators(reads.Collaborators, Protocol):
    settings: Settings  # sync_wait_seconds


POLL_SECONDS = 0.25  # a read of the task row (or the body cache) this often while waiting


async def until_finished(
    rt: Collaborators, caller: Caller, task_id: str, at_most: float | None = None
) -> Task:
    """The task once completed or failed, or as it is after `at_most` seconds (never more than the
    server's `sync_wait_seconds`)."""
    bound = rt.settings.sync_wait_seconds
    limit = bound if at_most is None else max(0.0, min(at_most, bound))
    deadline = time.monotonic() + limit
    while True:
        task = await reads.get_task(rt, caller, task_id)
        left = deadline - time.monotonic()
        if task.state.is_terminal or left <= 0:
            return task
        await asyncio.sleep(min(POLL_SECONDS, left))
