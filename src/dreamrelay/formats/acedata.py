"""The AceData format (family C, luma-api.md §0): flat video results and task records.

A result (`POST /luma/videos`, and `response` of a task record) is AceData's flat object — `success`,
`task_id`, `video_id`, `prompt`, `video_url`, sizes, `thumbnail_url`, `state` — plus `trace_id` and a
`data` list with the one video, which AceData's newer answers and its `acedata-luma-cli` read. One
task makes one video, so `video_id` is the task id (and is what `action: extend` takes back).
"""

from __future__ import annotations

import orjson

from dreamrelay.domain.failures import public_reason
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.domain.requests import VideoRequest
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.formats.own import iso_millis


def result(task: Task, media_base_url: str, trace_id: str) -> JsonObject:
    """What AceData answers for a generation: complete once finished, the task id and state before."""
    answer: JsonObject = {}
    if task.state is TaskState.COMPLETED:
        answer["success"] = True
    elif task.state is TaskState.FAILED:
        answer["success"] = False
    answer.update(task_id=task.id, trace_id=trace_id, video_id=task.id, prompt=task.request["prompt"])
    media = task.media if task.state is TaskState.COMPLETED else None
    if media:
        video, thumb = media["video"], media["thumbnail"]
        answer.update(
            video_url=f"{media_base_url}/{video['key']}",
            video_width=video["width"],
            video_height=video["height"],
            thumbnail_url=f"{media_base_url}/{thumb['key']}",
            thumbnail_width=thumb["width"],
            thumbnail_height=thumb["height"],
        )
    answer["state"] = task.state.value
    if task.state is TaskState.FAILED:
        reason = public_reason(task.failure_reason) or "generation failed"
        answer["error"] = {"code": "generation_failed", "message": reason}
    answer["data"] = [_video(task, answer)]
    return answer


def _video(task: Task, answer: JsonObject) -> JsonObject:
    return {
        "id": task.id,
        "prompt": answer["prompt"],
        "video_url": answer.get("video_url"),
        "thumbnail_url": answer.get("thumbnail_url"),
        "state": answer["state"],
        "model_name": task.model,
        "created_at": iso_millis(task.created_at),
    }


def record(task: Task, media_base_url: str, trace_id: str) -> JsonObject:
    """A task as `POST /luma/tasks` with `action: retrieve` shows it: times, request and response."""
    response = result(task, media_base_url, trace_id)
    shown: JsonObject = {
        "id": task.id,
        "created_at": round(task.created_at, 3),
        "started_at": round(task.created_at, 3),  # handed upstream within the submit
    }
    if task.finished_at is not None:
        shown["finished_at"] = round(task.finished_at, 3)
        shown["elapsed"] = round(task.finished_at - task.created_at, 3)
    shown.update(
        request=_request(task),
        response=response,
        trace_id=trace_id,
        state=response["state"],
        data=response["data"],
    )
    return shown


def _request(task: Task) -> JsonObject:
    request = VideoRequest.from_stored(task.request)
    echo: JsonObject = {
        "action": "extend" if task.action == "extend" else "generate",
        "prompt": request.prompt,
        "aspect_ratio": request.aspect_ratio,
        "loop": request.loop,
        "enhancement": request.expand_prompt,
    }
    if request.start_generation:
        echo["video_id"] = request.start_generation
    if request.start_image_url:
        echo["start_image_url"] = request.start_image_url
    if request.end_image_url:
        echo["end_image_url"] = request.end_image_url
    if task.callback_url:
        echo["callback_url"] = task.callback_url
    return echo


def encode_result(task: Task, media_base_url: str, trace_id: str = "") -> bytes:
    return orjson.dumps(result(task, media_base_url, trace_id))
