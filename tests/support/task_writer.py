"""Another process writing a task through the one state writer: `python -m tests.support.task_writer
<data dir> <database url or ""> <task id> <state> [failure reason]` (the in-flight mirror's tests)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from dreamrelay.domain.states import TaskState
from dreamrelay.runtime import Runtime
from dreamrelay.services import lifecycle
from dreamrelay.settings import Settings
from dreamrelay.store import tasks as task_store


async def write(
    data_dir: Path, database_url: str | None, task_id: str, state: str, reason: str | None
) -> None:
    settings = Settings(data_dir=data_dir, database_url=database_url)
    async with Runtime.from_settings(settings) as rt:
        async with rt.db.reader() as conn:
            task = await task_store.get_task(conn, task_id)
        assert task is not None
        change = lifecycle.Change(state=TaskState(state), failure_reason=reason)
        assert await lifecycle.transition(rt, task, change) is not None


if __name__ == "__main__":
    data_dir, url, task_id, state, *rest = sys.argv[1:]
    asyncio.run(write(Path(data_dir), url or None, task_id, state, rest[0] if rest else None))
