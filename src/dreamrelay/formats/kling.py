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


def video_data(task: Task, media_base_url: str) -> dict[str, Any]:
    """A Kling video task as Kling shows it: the `data` of its answers and what its callbacks post.
    A finished one also says what it cost (`final_unit_deduction`, credits, as Kling's callback names
    its charge): what was captured (a clip shorter than asked is charged as the shorter one), 0 if it
    failed."""
    media = task.media or {}
    video = media.get("video") if task.state is TaskState.COMPLETED else None
    data: dict[str, Any] = {
        "task_id": task.id,
        "task_status": STATUSES[task.state],
        "task_status_msg": (public_reason(task.failure_reason) or "")
        if task.state is TaskState.FAILED
        else "",
        "task_info": {},
        "created_at": int(task.created_at * 1000),
        "updated_at": int(task.updated_at * 1000),
        "task_result": {
            "videos": [
                {
                    "id": task.id,
                    "url": f"{media_base_url}/{video['key']}",
                    "duration": f"{float(video.get('duration') or 0):.1f}",
                }
            ]
            if video
            else []
        },
    }
    if task.state is TaskState.COMPLETED:
        data["final_unit_deduction"] = str(task.charged if task.charged is not None else task.price)
    elif task.state is TaskState.FAILED:
        data["final_unit_deduction"] = "0"
    return data


def encode_video(task: Task, media_base_url: str) -> bytes:
    return orjson.dumps(video_data(task, media_base_url))


def video_envelope(task: Task, media_base_url: str) -> bytes:
    return envelope(encode_video(task, media_base_url))


def video_page(tasks: list[Task], media_base_url: str) -> bytes:
    """A list answer: the envelope with `data` as an array of task objects."""
    return envelope(orjson.dumps([video_data(t, media_base_url) for t in tasks]))
