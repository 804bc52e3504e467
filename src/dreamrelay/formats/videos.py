"""The OpenAI Videos format (/v1/videos): a task shown as a `Video`, pages of them, the deletion answer and
the webhook event; and `size` ("WxH") and `seconds` in and out of our aspect ratio, resolution and
duration (reference: the openai SDK 3.51's types/video*.py)."""

from __future__ import annotations

import math
from typing import Any

import orjson

from dreamrelay.domain.catalog import ASPECT_RATIOS, MODELS, MODIFY_VIDEO, RAY32_ASPECT_RATIOS, SEEDANCE_SIZES
from dreamrelay.domain.failures import public_reason
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task

STATUSES = {
    TaskState.PENDING: "queued",
    TaskState.PROCESSING: "in_progress",
    TaskState.COMPLETED: "completed",
    TaskState.FAILED: "failed",
}
# The lines of a resolution's short side.
LINES = {"360p": 360, "540p": 540, "720p": 720, "1080p": 1080, "4k": 2160}
RESOLUTION_OF_LINES = {lines: name for name, lines in LINES.items()}


def _reduced(wide: int, high: int) -> tuple[int, int]:
    divisor = math.gcd(wide, high)
    return wide // divisor, high // divisor


# Each aspect ratio we name by its lowest terms: 1680x720 is 7:3 reduced, which we call 21:9.
RATIO_NAMES = {
    _reduced(*(int(n) for n in ratio.split(":"))): ratio for ratio in (*ASPECT_RATIOS, *RAY32_ASPECT_RATIOS)
}
EVENT_TYPES = {TaskState.COMPLETED: "video.completed", TaskState.FAILED: "video.failed"}


def size_of(aspect_ratio: str, resolution: str) -> str:
    """'16:9', '720p' → '1280x720' (the short side has the resolution's lines)."""
    wide, high = (int(n) for n in aspect_ratio.split(":"))
    short = LINES[resolution]
    if wide >= high:
        return f"{short * wide // high}x{short}"
    return f"{short}x{short * high // wide}"


def parse_size(size: str) -> tuple[str, str] | None:
    """'1280x720' → ('16:9', '720p'); None when it is no 'WxH' of whole lines we name."""
    width, x, height = size.strip().lower().partition("x")
    if not x or not width.isdigit() or not height.isdigit() or len(width) > 5 or len(height) > 5:
        return None
    w, h = int(width), int(height)
    if w == 0 or h == 0:
        return None
    resolution = RESOLUTION_OF_LINES.get(min(w, h))
    if resolution is None:
        return None
    wide, high = _reduced(w, h)
    return RATIO_NAMES.get((wide, high), f"{wide}:{high}"), resolution


def seedance_size(resolution: str, ratio: str) -> str | None:
    """The "WxH" Seedance makes at `resolution` and `ratio` (1248x704 at 720p 16:9), None if none."""
    frame = SEEDANCE_SIZES.get(resolution, {}).get(ratio)
    return f"{frame[0]}x{frame[1]}" if frame else None


def _size(request: dict[str, Any]) -> str:
    """A task's `size`: a Seedance request (its `ratio`) at Seedance's own frame, the others at the ratio
    with the resolution's lines on the short side."""
    aspect_ratio, resolution = request.get("aspect_ratio") or "16:9", request.get("resolution") or "720p"
    if "ratio" in request:
        return seedance_size(resolution, str(request["ratio"])) or size_of("16:9", "720p")
    return size_of(aspect_ratio, resolution)


def shown_model(model: str) -> str:
    """The name a task's model is shown under: the official one customers pass (ray-2, ray-3.2)."""
    spec = MODELS.get(model)
    return spec.official if spec else model


def seconds_of(duration: str | int) -> str:
    """'5s' (the own format's) or 5 (Seedance's) → '5'."""
    return str(duration).removesuffix("s")


def video(task: Task, progress: int) -> dict[str, Any]:
    """The `Video` object; every key present, null where there is no value (as the Node SDK expects)."""
    request = task.request
    state = task.state
    failed = state is TaskState.FAILED
    finished = task.finished_at if state.is_terminal else None
    return {
        "id": task.id,
        "object": "video",
        "model": shown_model(task.model),
        "status": STATUSES[state],
        "progress": 100 if state is TaskState.COMPLETED else (0 if failed else progress),
        "created_at": int(task.created_at),
        "completed_at": int(finished) if finished is not None else None,
        "expires_at": None,  # our media stays until the video is deleted
        "prompt": request.get("prompt"),
        "seconds": seconds_of(request.get("duration") or "5s"),
        "size": _size(request),
        "remixed_from_video_id": request.get("source_generation") if task.action == MODIFY_VIDEO else None,
        "error": _error(task) if failed else None,
    }


def _error(task: Task) -> dict[str, str]:
    reason = public_reason(task.failure_reason) or "the video could not be made"
    return {"code": task.failure_code or "generation_failed", "message": reason}


def encode_video(task: Task, progress: int) -> bytes:
    return orjson.dumps(video(task, progress))


def encode_page(videos: list[dict[str, Any]], more: bool) -> bytes:
    return orjson.dumps(
        {
            "object": "list",
            "data": videos,
            "first_id": videos[0]["id"] if videos else None,
            "last_id": videos[-1]["id"] if videos else None,
            "has_more": more,
        }
    )


def encode_deleted(task_id: str) -> bytes:
    return orjson.dumps({"id": task_id, "object": "video.deleted", "deleted": True})


def event(task: Task, media_base_url: str) -> bytes:
    """The webhook event of a finished task: the id only; the receiver retrieves the video."""
    return orjson.dumps(
        {
            "id": f"evt_{task.id.replace('-', '')}",
            "object": "event",
            "created_at": int(task.finished_at or task.updated_at),
            "type": EVENT_TYPES.get(task.state, "video.failed"),
            "data": {"id": task.id},
        }
    )
