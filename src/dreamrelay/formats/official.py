"""The official Dream Machine format: a task shown as a `Generation` (api.lumalabs.ai, luma-api.md §4.3)."""

from __future__ import annotations

import orjson

from dreamrelay.domain.catalog import (
    ADD_AUDIO,
    DM_ACTIONS,
    DM_IMAGE_ACTIONS,
    GENERATE_IMAGE,
    MODELS,
    MODIFY_VIDEO,
    POSITION_FIELDS,
    REFRAME_IMAGE,
    REFRAME_VIDEO,
    UPSCALE_VIDEO,
)
from dreamrelay.domain.failures import public_reason
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.domain.requests import VideoRequest
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.formats.own import iso_millis

STATES = {
    TaskState.PENDING: "queued",
    TaskState.PROCESSING: "dreaming",
    TaskState.COMPLETED: "completed",
    TaskState.FAILED: "failed",
}


# Official names the current SDKs no longer accept (`request.model` is Literal["ray-2", "ray-flash-2"]
# in lumaai ≥ 1.18), shown as their successor so a strict client can parse every task we show it.
RETIRED_OFFICIAL = {"ray-1-6": "ray-2"}


def official_model(model: str) -> str:
    """The official name a task's model is shown under (docs/decisions.md, "official model names")."""
    spec = MODELS.get(model)
    name = spec.official if spec else model
    return RETIRED_OFFICIAL.get(name, name)


def generation(task: Task, media_base_url: str) -> JsonObject:
    media = task.media if task.state is TaskState.COMPLETED else None
    if task.action in DM_IMAGE_ACTIONS:
        picture = media["images"][0]["key"] if media and media.get("images") else None
        assets = {"video": None, "image": f"{media_base_url}/{picture}" if picture else None}
    else:
        assets = {
            "video": f"{media_base_url}/{media['video']['key']}" if media else None,
            "image": f"{media_base_url}/{media['thumbnail']['key']}" if media else None,
        }
    return {
        "id": task.id,
        "generation_type": "image" if task.action in DM_IMAGE_ACTIONS else "video",
        "state": STATES[task.state],
        "failure_reason": public_reason(task.failure_reason) if task.state is TaskState.FAILED else None,
        "created_at": iso_millis(task.created_at),
        "assets": {**assets, "progress_video": None},
        "model": official_model(task.model),
        "request": _request(task) if task.action not in DM_ACTIONS else dream_machine_request(task),
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


def _request(task: Task) -> JsonObject:
    """The create request echoed back; image keyframes show our stored copies."""
    request = VideoRequest.from_stored(task.request)
    echo: JsonObject = {
        "generation_type": "video",
        "model": official_model(task.model),
        "prompt": request.prompt,
        "aspect_ratio": request.aspect_ratio,
        "loop": request.loop,
        "resolution": request.resolution,
        "duration": request.duration,
    }
    keyframes = {
        name: frame
        for name, frame in (
            ("frame0", _frame(request.start_generation, request.start_image_url)),
            ("frame1", _frame(request.end_generation, request.end_image_url)),
        )
        if frame is not None
    }
    if keyframes:
        echo["keyframes"] = keyframes
    if task.callback_url:
        echo["callback_url"] = task.callback_url
    return echo


# What each other Dream Machine request echoes (the lumaai SDK's request types), from the stored request.
_ECHOED = {
    GENERATE_IMAGE: (
        "prompt",
        "aspect_ratio",
        "format",
        "image_ref",
        "style_ref",
        "character_ref",
        "modify_image_ref",
    ),
    REFRAME_IMAGE: ("prompt", "aspect_ratio", "format", "media", *POSITION_FIELDS),
    REFRAME_VIDEO: ("prompt", "aspect_ratio", "media", "first_frame", *POSITION_FIELDS),
    MODIFY_VIDEO: ("prompt", "mode", "media", "first_frame"),
    UPSCALE_VIDEO: ("resolution",),
    ADD_AUDIO: ("prompt", "negative_prompt"),
}
_GENERATION_TYPES = {GENERATE_IMAGE: "image"}
_WITH_MODEL = (GENERATE_IMAGE, REFRAME_IMAGE, REFRAME_VIDEO, MODIFY_VIDEO)


def dream_machine_request(task: Task) -> JsonObject:
    request = task.request
    echo: JsonObject = {"generation_type": _GENERATION_TYPES.get(task.action, task.action)}
    if task.action in _WITH_MODEL:
        echo["model"] = official_model(task.model)
    echo.update({k: request[k] for k in _ECHOED[task.action] if request.get(k) is not None})
    if task.callback_url:
        echo["callback_url"] = task.callback_url
    return echo


def _frame(generation_id: str | None, image_url: str | None) -> dict[str, str] | None:
    if generation_id:
        return {"type": "generation", "id": generation_id}
    if image_url:
        return {"type": "image", "url": image_url}
    return None
