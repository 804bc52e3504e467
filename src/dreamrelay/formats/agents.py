"""Luma's Agents API format: a task shown as a `Generation`, a file as a `File` (luma-agents 0.5.0)."""

from __future__ import annotations

import orjson

from dreamrelay.domain.agent_file import AgentFile
from dreamrelay.domain.failures import public_reason
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.domain.ranges import MAX_TIMESTAMP
from dreamrelay.domain.requests import AgentsRequest
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.formats.own import iso_millis

API_VERSION = "2026-04-01"  # the X-API-Version every /agents/v1 answer carries

STATES = {
    TaskState.PENDING: "queued",
    TaskState.PROCESSING: "processing",
    TaskState.COMPLETED: "completed",
    TaskState.FAILED: "failed",
}


def outputs(task: Task, media_base_url: str) -> list[JsonObject] | None:
    """Our stored copies (stable URLs, unlike upstream's hour-long presigned ones)."""
    media = task.media if task.state is TaskState.COMPLETED else None
    if not media:
        return None
    if "images" in media:
        return [{"type": "image", "url": f"{media_base_url}/{image['key']}"} for image in media["images"]]
    return [{"type": "video", "url": f"{media_base_url}/{media['video']['key']}"}]


def generation(task: Task, media_base_url: str) -> JsonObject:
    failed = task.state is TaskState.FAILED
    return {
        "id": task.id,
        "created_at": iso_millis(task.created_at),
        "model": task.model,
        "state": STATES[task.state],
        "type": AgentsRequest.from_stored(task.request, task.model).kind,
        "failure_code": (task.failure_code or "generation_failed") if failed else None,
        "failure_reason": public_reason(task.failure_reason) if failed else None,
        "output": outputs(task, media_base_url),
    }


def encode_generation(task: Task, media_base_url: str) -> bytes:
    return orjson.dumps(generation(task, media_base_url))


def file_object(file: AgentFile) -> JsonObject:
    """A `File` (types/file.py)."""
    return {
        "id": file.id,
        "created_at": iso_millis(file.created_at),
        "mime_type": file.mime_type,
        "purpose": file.purpose,
        "size_bytes": file.size_bytes,
        "state": file.state,
        "deleted_at": iso_millis(file.deleted_at) if file.deleted_at else None,
        # A row stored before expires_at was bounded may lie past year 9999: shown as the last moment.
        "expires_at": iso_millis(min(file.expires_at, MAX_TIMESTAMP)) if file.expires_at else None,
        "failure_reason": file.failure_reason,
        "filename": file.filename,
        "user_id": file.user_id,
    }
