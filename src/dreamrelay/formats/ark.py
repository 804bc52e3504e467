"""Volcengine Ark's content-generation task object (/api/v3/contents/generations/tasks), as
`volcenginesdkarkruntime` 5.0's `ContentGenerationTask` reads it: id, model, status, content
(video_url, last_frame_url), usage (completion_tokens, total_tokens), error, seed, resolution, ratio,
duration, framespersecond, service_tier, execution_expires_after, generate_audio, draft, created_at,
updated_at. DreamRelay adds `credits` ({"held", "charged"}: what the task held and what its completion
captured) so the customer reads what was charged; the SDK keeps unknown fields.
"""

from __future__ import annotations

from typing import Any

import orjson

from dreamrelay.domain.catalog import SEEDANCE_SIZES, seedance_tokens
from dreamrelay.domain.failures import public_reason
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "expired")
_OURS = {
    TaskState.PENDING: "queued",
    TaskState.PROCESSING: "running",
    TaskState.COMPLETED: "succeeded",
    TaskState.FAILED: "failed",
}
CANCELLED = "cancelled"  # a task's failure_code when the customer cancelled it while queued
EXPIRES_AFTER = 172_800  # Ark's default execution_expires_after (48 h)
# Why a task failed, as Ark's error codes say it.
_FAILURE_CODES = {CANCELLED: "TaskCancelled", "output_not_found": "OutputExpired"}


def status_of(task: Task) -> str:
    """Ark's word: a failed task that was cancelled (by the customer, or upstream) or expired says so."""
    if task.state is TaskState.FAILED:
        if task.failure_code == CANCELLED or task.upstream_state == "cancelled":
            return "cancelled"
        if task.upstream_state == "expired":
            return "expired"
    return _OURS[task.state]


def _ratio(request: dict[str, Any], video: dict[str, Any]) -> str:
    size = (video.get("width"), video.get("height"))
    found = SEEDANCE_SIZES.get(request.get("resolution", ""), {})
    return next((name for name, wh in found.items() if wh == size), str(request.get("ratio", "16:9")))


def task_object(task: Task, media_base_url: str) -> dict[str, Any]:
    request = task.request
    body: dict[str, Any] = {"id": task.id, "model": task.model, "status": status_of(task)}
    if task.state is TaskState.FAILED:
        code = _FAILURE_CODES.get(task.failure_code or "", task.failure_code or "InternalServiceError")
        body["error"] = {"code": code, "message": public_reason(task.failure_reason) or "the task failed"}
    fps = int(request.get("fps", 24))
    if task.state is TaskState.COMPLETED and task.media:
        media = task.media
        video = media.get("video") or {}
        content = {"video_url": f"{media_base_url}/{video.get('key', '')}"}
        if request.get("return_last_frame") and media.get("last_frame"):
            content["last_frame_url"] = f"{media_base_url}/{media['last_frame']['key']}"
        body["content"] = content
        tokens = task.usage_tokens
        if tokens is None:
            frames = int(video.get("frames") or 0)
            tokens = seedance_tokens(
                int(video.get("width") or 0), int(video.get("height") or 0), fps, frames / fps
            )
        body["usage"] = {"completion_tokens": tokens, "total_tokens": tokens}
        frames = int(video.get("frames") or 0)
        body.update(
            ratio=_ratio(request, video), duration=round(frames / fps) if frames else request.get("duration")
        )
    else:
        body.update(ratio=request.get("ratio"), duration=request.get("duration"))
    body.update(
        seed=request.get("seed", -1),
        resolution=request.get("resolution"),
        framespersecond=fps,
        service_tier="default",
        execution_expires_after=EXPIRES_AFTER,
        generate_audio=False,
        draft=False,
        created_at=int(task.created_at),
        updated_at=int(task.finished_at or task.updated_at),
        credits={"held": task.price, "charged": _charged(task)},
    )
    return body


def _charged(task: Task) -> int | None:
    """What the task cost: its capture once completed, nothing once failed, None while it runs."""
    if task.state is TaskState.COMPLETED:
        return task.charged if task.charged is not None else task.price
    return 0 if task.state is TaskState.FAILED else None


def encode_task(task: Task, media_base_url: str) -> bytes:
    return orjson.dumps(task_object(task, media_base_url))


def encode_list(total: int, bodies: list[bytes]) -> bytes:
    """`{"total", "items"}`: the stored task objects joined as they are."""
    return b'{"total":%d,"items":[%s]}' % (total, b",".join(bodies))


def encode_created(task: Task) -> bytes:
    return orjson.dumps({"id": task.id})
