"""new-api's answer to the batch query (family A', luma-api.md §1.4), chosen per key.

`{"code": "success", "message": "", "data": [TaskDto, ...]}`: one new-api task row per task found (in
the order asked), whose `data` is our own-format task object, byte for byte as the bare array has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from dreamrelay.domain.failures import public_reason
from dreamrelay.domain.states import TaskState

# new-api's task statuses and the progress it shows for them.
STATUS = {
    TaskState.PENDING: ("QUEUED", "0%"),
    TaskState.PROCESSING: ("IN_PROGRESS", "50%"),
    TaskState.COMPLETED: ("SUCCESS", "100%"),
    TaskState.FAILED: ("FAILURE", "100%"),
}
ACTION = "LUMA_VIDEO"


@dataclass(frozen=True)
class Found:
    """A task the batch found: its pre-encoded own-format body and its times."""

    task_id: str
    body: bytes
    state: TaskState
    failure_reason: str | None
    created_at: float
    finished_at: float | None


def envelope(tasks: Sequence[Found]) -> bytes:
    items = [_item(task) for task in tasks]
    return b'{"code":"success","message":"","data":[' + b",".join(items) + b"]}"


def _item(task: Found) -> bytes:
    status, progress = STATUS[task.state]
    head = orjson.dumps(
        {
            "task_id": task.task_id,
            "action": ACTION,
            "status": status,
            "fail_reason": public_reason(task.failure_reason) or "",
            "submit_time": int(task.created_at),
            # DreamRelay hands a task to its upstream within the submit request.
            "start_time": int(task.created_at),
            "finish_time": int(task.finished_at) if task.finished_at else 0,
            "progress": progress,
        }
    )
    return head[:-1] + b',"data":' + task.body + b"}"
