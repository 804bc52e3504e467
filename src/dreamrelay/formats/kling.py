"""Kling's image format: a task's `data` object, and the envelope every Kling answer wraps it in."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from dreamrelay.domain.failures import public_reason
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task

STATUSES = {
    TaskState.PENDING: "submitted",
    TaskState.PROCESSING: "processing",
    TaskState.COMPLETED: "succeed",
    TaskState.FAILED: "failed",
}


def task_data(task: Task, media_base_url: str) -> dict[str, Any]:
    images = (task.media or {}).get("images", []) if task.state is TaskState.COMPLETED else []
    return {
        "task_id": task.id,
        "task_status": STATUSES[task.state],
        "task_status_msg": (public_reason(task.failure_reason) or "")
        if task.state is TaskState.FAILED
        else "",
        "created_at": int(task.created_at * 1000),
        "updated_at": int(task.updated_at * 1000),
        "task_result": {
            "images": [
                {"index": i, "url": f"{media_base_url}/{image['key']}"} for i, image in enumerate(images)
            ]
        },
    }


def encode_data(task: Task, media_base_url: str) -> bytes:
    return orjson.dumps(task_data(task, media_base_url))


def envelope(data: bytes) -> bytes:
    """{code: 0, message: "SUCCEED", request_id, data} around pre-encoded `data`, without re-parsing it."""
    head = orjson.dumps({"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4())})
    return head[:-1] + b',"data":' + data + b"}"
