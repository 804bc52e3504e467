"""Luma's Agents API format: a task shown as a `Generation`, a file as a `File` (luma-agents 0.5.0)."""

from __future__ import annotations

from typing import Any

import orjson

from dreamrelay.domain.failures import public_reason
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


def outputs(task: Task, media_base_url: str) -> list[dict[str, Any]] | None:
    """Our stored copies (stable URLs, unlike upstream's hour-long presigned ones)."""
    media = task.media if task.state is TaskState.COMPLETED else None
    if not media:
        return None
    if "images" in media:
        return [{"type": "image", "url": f"{media_base_url}/{image['key']}"} for image in media["images"]]
    return [{"type": "video", "url": f"{media_base_url}/{media['video']['key']}"}]


def generation(task: Task, media_base_url: str) -> dict[str, Any]:
    failed = task.state is TaskState.FAILED
    return {
        "id": task.id,
        "created_at": iso_millis(task.created_at),
        "model": task.model,
        "state": STATES[task.state],
        "type": task.request.get("type", "video"),
        "failure_code": (task.failure_code or "generation_failed") if failed else None,
        "failure_reason": public_reason(task.failure_reason) if failed else None,
        "output": outputs(task, media_base_url),
    }


def encode_generation(task: Task, media_base_url: str) -> bytes:
    return orjson.dumps(generation(task, media_base_url))


def file_object(row: dict[str, Any]) -> dict[str, Any]:
    """A `File` (types/file.py) from an agent_files row."""
    return {
        "id": row["id"],
        "created_at": iso_millis(row["created_at"]),
        "mime_type": row["mime_type"],
        "purpose": row["purpose"],
        "size_bytes": row["size_bytes"],
        "state": row["state"],
        "deleted_at": iso_millis(row["deleted_at"]) if row["deleted_at"] else None,
        "expires_at": iso_millis(row["expires_at"]) if row["expires_at"] else None,
        "failure_reason": row["failure_reason"],
        "filename": row["filename"],
        "user_id": row["user_id"],
    }
