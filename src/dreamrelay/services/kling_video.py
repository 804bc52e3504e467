"""Kling video (text2video, image2video) on the task engine: a request checked against the catalog, its
images made ours, then services/intake.py (replay, admission, insert, dispatch); reads under the path a
task was made through, and pages of them."""

from __future__ import annotations

from dataclasses import replace

from dreamrelay.domain.api_format import ApiFormat
from dreamrelay.domain.catalog import (
    KLING_DEFAULT_MODEL,
    KLING_DURATIONS,
    KLING_IMAGE2VIDEO,
    KLING_TEXT2VIDEO,
    KLING_VIDEO_MODELS,
    KLING_VIDEO_RATIOS,
)
from dreamrelay.domain.errors import InvalidRequest, PayloadTooLarge, TaskNotFound
from dreamrelay.domain.inputs import KlingVideoInput
from dreamrelay.domain.requests import KlingVideoRequest
from dreamrelay.domain.task import Task
from dreamrelay.services import reads
from dreamrelay.services.auth import Caller
from dreamrelay.services.idempotency import Idempotency
from dreamrelay.services.images import TaskInputs, store_image
from dreamrelay.services.intake import Admit, Collaborators, Order, intake
from dreamrelay.services.submit import checked_callback
from dreamrelay.store import tasks as task_store

PAGE_SIZE_MAX = 500
PAGE_NUMBER_MAX = 10_000


def request_of(given: KlingVideoInput, model: str) -> KlingVideoRequest:
    """The checked request (images not yet ours), or a 400 naming the field."""
    mode = given.mode or "std"
    if mode not in KLING_VIDEO_MODELS[model].modes:
        raise InvalidRequest(f"mode must be one of {', '.join(KLING_VIDEO_MODELS[model].modes)} for {model}")
    duration = given.duration or KLING_DURATIONS[0]
    if duration not in KLING_DURATIONS:
        raise InvalidRequest("duration must be 5 or 10")
    ratio = given.aspect_ratio or "16:9"
    if ratio not in KLING_VIDEO_RATIOS:
        raise InvalidRequest(f"aspect_ratio must be one of {', '.join(KLING_VIDEO_RATIOS)}")
    camera = given.camera_control
    if camera is not None and camera.get("type") == "simple":
        moves = [value for value in (camera.get("config") or {}).values() if value]
        if len(moves) != 1:
            raise InvalidRequest("camera_control.config: a simple move sets exactly one value other than 0")
    return KlingVideoRequest(
        prompt=given.prompt,
        model=model,
        mode=mode,
        aspect_ratio=ratio,
        duration=duration,
        negative_prompt=given.negative_prompt or None,
        cfg_scale=given.cfg_scale,
        camera_control=camera,
    )


async def submit(
    rt: Collaborators,
    caller: Caller,
    given: KlingVideoInput,
    api_format: ApiFormat = ApiFormat.KLING_VIDEO,
    idem: Idempotency | None = None,
) -> Task:
    """A Kling video task: image2video when `given` has an image (required through …/image2video)."""

    async def prepare(admit: Admit, inputs: TaskInputs) -> Order:
        model = given.model or KLING_DEFAULT_MODEL
        if model not in KLING_VIDEO_MODELS:
            raise InvalidRequest(f"model_name must be one of {', '.join(KLING_VIDEO_MODELS)}")
        caller.check_model(model)
        if given.image_to_video and not given.image:
            raise InvalidRequest("image is required for image2video")
        if given.image_tail and not given.image:
            raise InvalidRequest("image_tail needs an image (the first frame): use image2video")
        if not given.image and not given.prompt.strip():
            raise InvalidRequest("prompt must not be empty")
        action = KLING_IMAGE2VIDEO if given.image else KLING_TEXT2VIDEO
        request = request_of(given, model)
        callback_url = await checked_callback(rt, given.callback_url, "callback_url")
        if given.image:  # money and limits before the images are fetched
            await admit(action, model, request.price_key)
            request = replace(request, image_url=await _stored(rt, "image", given.image, inputs))
            if given.image_tail:
                tail = await _stored(rt, "image_tail", given.image_tail, inputs)
                request = replace(request, image_tail_url=tail)
        return Order(action, model, request, callback_url)

    return await intake(rt, caller, api_format, idem, prepare)


async def _stored(rt: Collaborators, field: str, value: str, inputs: TaskInputs) -> str:
    try:
        return await store_image(rt, field, value, inputs)
    except PayloadTooLarge as exc:  # Kling's limit (10 MB) is a bad request like the others
        raise InvalidRequest(exc.message) from exc


async def get_task(rt: reads.Collaborators, caller: Caller, word: str, task_id: str) -> Task:
    """The caller's Kling video task made through `word` (text2video or image2video); 404 otherwise."""
    task = await reads.get_task(rt, caller, task_id)
    if task.action != word:
        raise TaskNotFound(f"task {task_id} not found")
    return task


async def page(rt: reads.Collaborators, caller: Caller, word: str, number: int, size: int) -> list[Task]:
    """Page `number` (from 1) of the caller's Kling video tasks made through `word`, newest first."""
    if not (1 <= number <= PAGE_NUMBER_MAX and 1 <= size <= PAGE_SIZE_MAX):
        raise InvalidRequest(f"pageNum must be 1..{PAGE_NUMBER_MAX} and pageSize 1..{PAGE_SIZE_MAX}")
    async with rt.db.reader() as conn:
        tasks, _more = await task_store.list_video_tasks(
            conn, caller.account_id, limit=size, offset=(number - 1) * size, actions=(word,)
        )
    return tasks
