"""The official Dream Machine format: a task shown as a `Generation` (api.lumalabs.ai, luma-api.md §4.3)."""

from __future__ import annotations

from typing import Any

import orjson

from dreamrelay.domain.catalog import MODELS
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.formats.own import iso_millis

STATES = {
    TaskState.PENDING: "queued",
    TaskState.PROCESSING: "dreaming",
    TaskState.COMPLETED: "completed",
    TaskState.FAILED: "failed",
}


def official_model(model: str) -> str:
    spec = MODELS.get(model)
    return spec.official if spec else model


def generation(task: Task, media_base_url: str) -> dict[str, Any]:
    media = task.media if task.state is TaskState.COMPLETED else None
    return {
        "id": task.id,
        "generation_type": "video",
        "state": STATES[task.state],
        "failure_reason": task.failure_reason if task.state is TaskState.FAILED else None,
        "created_at": iso_millis(task.created_at),
        "assets": {
            "video": f"{media_base_url}/{media['video']['key']}" if media else None,
            "image": f"{media_base_url}/{media['thumbnail']['key']}" if media else None,
            "progress_video": None,
        },
        "model": official_model(task.model),
        "request": _request(task),
    }


def encode_generation(task: Task, media_base_url: str) -> bytes:
    return orjson.dumps(generation(task, media_base_url))


def encode_list(tasks: list[Task], media_base_url: str, *, limit: int, offset: int, more: bool) -> bytes:
    return orjson.dumps(
        {
            "generations": [generation(t, media_base_url) for t in tasks],
            "count": len(tasks),
            "has_more": more,
            "limit": limit,
            "offset": offset,
        }
    )


def _request(task: Task) -> dict[str, Any]:
    """The create request echoed back; image keyframes show our stored copies."""
    request = task.request
    echo: dict[str, Any] = {
        "generation_type": "video",
        "model": official_model(task.model),
        "prompt": request["prompt"],
        "aspect_ratio": request["aspect_ratio"],
        "loop": request["loop"],
        "resolution": request["resolution"],
        "duration": request["duration"],
    }
    keyframes = {
        name: frame
        for name, frame in (
            ("frame0", _frame(request.get("start_generation"), request.get("image_url"))),
            ("frame1", _frame(request.get("end_generation"), request.get("image_end_url"))),
        )
        if frame is not None
    }
    if keyframes:
        echo["keyframes"] = keyframes
    if task.callback_url:
        echo["callback_url"] = task.callback_url
    return echo


def _frame(generation_id: str | None, image_url: str | None) -> dict[str, str] | None:
    if generation_id:
        return {"type": "generation", "id": generation_id}
    if image_url:
        return {"type": "image", "url": image_url}
    return None
