"""The own ("seed") format: the task object of POST /luma/tasks, key order as published."""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from typing import Any

import orjson

from dreamrelay.domain.failures import public_reason
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.domain.states import TaskState


def iso_millis(ts: float) -> str:
    """ISO 8601 UTC with milliseconds and Z, e.g. 2024-12-22T13:38:40.139Z."""
    # Rounded to the microsecond (half to even) and carried as datetime.fromtimestamp does.
    fraction, whole = math.modf(ts)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    return f"{_second(int(whole))}{micros // 1000:03d}Z"


@functools.lru_cache(maxsize=64)
def _second(second: int) -> str:
    """The formatted part up to the milliseconds: bodies made in the same second share it."""
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def task_object(
    *,
    task_id: str,
    created_at: float,
    request: JsonObject,
    state: TaskState,
    failure_reason: str | None,
    media: JsonObject | None,
    media_base_url: str,
) -> JsonObject:
    """Keys sorted as the seed's relay emits them (its Go maps marshal sorted); failure_reason slots in,
    and so does a top-level `prompt` (= request.prompt), which the original proxy's object has and
    clients (Dooy, 99AI) read."""
    # Pictures (Photon images) have no video: the own format shows such a task without media.
    finished = state is TaskState.COMPLETED and media and "video" in media
    shown = _media_objects(media, media_base_url) if finished and media else None
    return {
        "artifact": ({"created_at": iso_millis(media["completed_at"]), **shown} if shown and media else None),
        "created_at": iso_millis(created_at),
        "failure_reason": public_reason(failure_reason) if state is TaskState.FAILED else None,
        "id": task_id,
        "last_frame": shown["last_frame"] if shown else None,
        "prompt": request["prompt"],
        "request": {"aspect_ratio": request["aspect_ratio"], "prompt": request["prompt"]},
        "state": state.value,
        "thumbnail": shown["thumbnail"] if shown else None,
        "video": shown["video"] if shown else None,
        "video_raw": shown["video_raw"] if shown else None,
    }


def encode_task(**fields: Any) -> bytes:
    return orjson.dumps(task_object(**fields))


def _media_objects(media: JsonObject, base: str) -> JsonObject:
    video, thumb, last = media["video"], media["thumbnail"], media["last_frame"]
    video_url = f"{base}/{video['key']}"
    return {
        "last_frame": {
            "height": last["height"],
            "media_type": "image",
            "palette": None,
            "url": f"{base}/{last['key']}",
            "width": last["width"],
        },
        "thumbnail": {
            "height": thumb["height"],
            "media_type": "image",
            "palette": {"grid": thumb["palette"]},
            "url": f"{base}/{thumb['key']}",
            "width": thumb["width"],
        },
        "video": {
            "download_url": video_url,
            "height": video["height"],
            "url": video_url,
            "width": video["width"],
        },
        "video_raw": {
            "duration": video["duration"],
            "height": video["height"],
            "media_type": "video",
            "url": video_url,
            "width": video["width"],
        },
    }
