"""The orphan sweep: input images no task points to are removed.

A submit stores its input images before the transaction that inserts its task, and removes them itself
when that transaction refuses the task (402, 403, 429, a replay); only a process dying in between leaves
files behind. Input keys name their task (`inputs/<task id>-<n>.<ext>`), so a file is an orphan when
it is older than the grace period and its task does not exist. Keys of the older `inputs/<uuid>.<ext>`
form name no task and are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from dreamrelay.media.storage import StorageError
from dreamrelay.store.schema import tasks

if TYPE_CHECKING:
    from dreamrelay.media.storage import Storage
    from dreamrelay.settings import Settings
    from dreamrelay.store.engine import Database


class Collaborators(Protocol):
    db: Database
    storage: Storage
    settings: Settings  # how often to sweep, how old an orphan must be


log = logging.getLogger(__name__)

INPUTS = "inputs/"
INPUT_KEY = re.compile(r"^inputs/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-\d+\.[a-z]+$")
LOOKUP_BATCH = 500


def input_key(task_id: str, index: int, extension: str) -> str:
    """Where the `index`-th input image of `task_id` is stored."""
    return f"{INPUTS}{task_id}-{index}.{extension}"


async def sweep_inputs(rt: Collaborators, *, grace_seconds: float, now: float | None = None) -> int:
    """Remove input images older than `grace_seconds` whose task does not exist; how many went."""
    cutoff = (time.time() if now is None else now) - grace_seconds
    by_task: dict[str, list[str]] = {}
    async for key, modified in rt.storage.listing(INPUTS):
        found = INPUT_KEY.match(key)
        if found and modified < cutoff:
            by_task.setdefault(found.group(1), []).append(key)
    ids = list(by_task)
    known: set[str] = set()
    for start in range(0, len(ids), LOOKUP_BATCH):
        part = ids[start : start + LOOKUP_BATCH]
        async with rt.db.reader() as conn:
            known.update(r.id for r in await conn.execute(select(tasks.c.id).where(tasks.c.id.in_(part))))
    orphans = [key for task_id, keys in by_task.items() if task_id not in known for key in keys]
    if orphans:
        await rt.storage.delete(orphans)
        log.info("orphan sweep: removed %d input images no task points to", len(orphans))
    return len(orphans)


async def run(rt: Collaborators, stop: asyncio.Event) -> None:
    """Sweep every `input_sweep_seconds` until `stop` (a failure is logged and tried next time)."""
    every = rt.settings.input_sweep_seconds
    if every <= 0:
        return
    while not stop.is_set():
        try:
            await sweep_inputs(rt, grace_seconds=rt.settings.input_grace_seconds)
        except (StorageError, SQLAlchemyError, OSError) as exc:
            log.warning("orphan sweep failed, trying again in %g s: %s", every, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
