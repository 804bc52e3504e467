"""Own-format, official and AceData videos and Kling images: check the request and build the typed
order; services/intake.py does the rest (replay, admission, inputs, insert, dispatch)."""

from __future__ import annotations

from dataclasses import replace

from yarl import URL

from dreamrelay.domain.api_format import ApiFormat
from dreamrelay.domain.catalog import (
    IMAGE_MODELS,
    MODELS,
    RAY32,
    RAY32_ASPECT_RATIOS,
    normalise_duration,
)
from dreamrelay.domain.errors import InvalidRequest, PayloadTooLarge, TaskNotFound, TaskNotReady
from dreamrelay.domain.ids import ID_MAX_CHARS
from dreamrelay.domain.inputs import GenerationInput, ImagesInput
from dreamrelay.domain.requests import ImagesRequest, VideoRequest
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import IMAGE_ACTION, Task
from dreamrelay.formats.families import FAMILIES
from dreamrelay.netguard import UnsafeURL, check_url_syntax, resolve_checked
from dreamrelay.services.auth import Caller
from dreamrelay.services.idempotency import Idempotency
from dreamrelay.services.images import TaskInputs, store_image
from dreamrelay.services.intake import Admit, Collaborators, Order, intake
from dreamrelay.store import tasks as task_store

__all__ = ["Collaborators", "checked_callback", "extend", "submit", "submit_images"]


async def submit(
    rt: Collaborators,
    caller: Caller,
    given: GenerationInput,
    api_format: ApiFormat = ApiFormat.LUMA,
    idem: Idempotency | None = None,
) -> Task:
    async def prepare(admit: Admit, inputs: TaskInputs) -> Order:
        return await _video(rt, caller, given, api_format, admit, inputs)

    return await intake(rt, caller, api_format, idem, prepare)


async def _video(
    rt: Collaborators,
    caller: Caller,
    given: GenerationInput,
    api_format: ApiFormat,
    admit: Admit,
    inputs: TaskInputs,
) -> Order:
    start = await _generation_keyframe(rt, caller, "frame0", given.start_generation)
    end = await _generation_keyframe(rt, caller, "frame1", given.end_generation)
    parents = [p for p in (start, end) if p is not None]
    if len({p.channel_id for p in parents}) > 1:
        raise InvalidRequest("both keyframe generations must come from the same upstream channel")
    model, resolution, duration = _options(rt, given.model, given.resolution, given.duration)
    caller.check_model(model)
    if model == RAY32:
        _check_ray32(given.aspect_ratio or "16:9", duration, given.loop)
    # Errors name the fields as the customer's format calls them.
    fields = FAMILIES[api_format].fields
    callback_url = await checked_callback(rt, given.callback_url, fields.callback)
    request = VideoRequest(
        prompt=given.prompt,
        model=model,
        aspect_ratio=given.aspect_ratio or "16:9",
        resolution=resolution,
        duration=duration,
        loop=given.loop,
        expand_prompt=given.expand_prompt,
        start_generation=start.id if start else None,
        end_generation=end.id if end else None,
        extend_upstream_id=start.upstream_id if start else None,
        end_upstream_id=end.upstream_id if end else None,
    )
    action = "extend" if parents else "generate"
    if (given.image and not start) or (given.end_image and not end):
        # Money and limits before any image is fetched; without images the insert is the only check.
        await admit(action, model, request.price_key)
    if given.image and not start:
        request = replace(
            request, start_image_url=await store_image(rt, fields.start_image, given.image, inputs)
        )
    if given.end_image and not end:
        request = replace(
            request, end_image_url=await store_image(rt, fields.end_image, given.end_image, inputs)
        )
    return Order(action, model, request, callback_url, parents[0] if parents else None)


async def submit_images(
    rt: Collaborators, caller: Caller, given: ImagesInput, idem: Idempotency | None = None
) -> Task:
    async def prepare(admit: Admit, inputs: TaskInputs) -> Order:
        model = given.model or IMAGE_MODELS[0]
        if model not in IMAGE_MODELS:
            raise InvalidRequest(f"model must be one of {', '.join(IMAGE_MODELS)}")
        caller.check_model(model)
        callback_url = await checked_callback(rt, given.callback_url, "callback_url")
        request = ImagesRequest(
            prompt=given.prompt,
            model=model,
            aspect_ratio=given.aspect_ratio or "16:9",
            n=given.n,
            negative_prompt=given.negative_prompt,
            image_fidelity=given.image_fidelity,
        )
        if given.image:  # money and limits before the image is fetched; otherwise the insert checks them
            await admit(IMAGE_ACTION, model, request.price_key)
            try:
                image_url = await store_image(rt, "image", given.image, inputs)
            except PayloadTooLarge as exc:  # a limit of the Kling table: 400 like the others
                raise InvalidRequest(exc.message) from exc
            request = replace(request, image_url=image_url)
        return Order(IMAGE_ACTION, model, request, callback_url)

    return await intake(rt, caller, ApiFormat.KLING, idem, prepare)


async def extend(
    rt: Collaborators,
    caller: Caller,
    parent_id: str,
    given: GenerationInput,
    api_format: ApiFormat = ApiFormat.LUMA,
    idem: Idempotency | None = None,
) -> Task:
    """Own-format extend: continue a completed task with its model, frame size and aspect ratio."""

    async def prepare(admit: Admit, inputs: TaskInputs) -> Order:
        async with rt.db.reader() as conn:
            parent = await task_store.get_task(conn, parent_id, caller.account_id)
        if parent is None or parent.is_image:
            raise TaskNotFound(f"task {parent_id} not found")
        if parent.state is not TaskState.COMPLETED or parent.upstream_id is None:
            raise TaskNotReady(f"task {parent_id} is {parent.state}; only a completed task can be extended")
        base = VideoRequest.from_stored(parent.request)
        continued = replace(
            given,
            model=base.model,
            resolution=base.resolution,
            aspect_ratio=base.aspect_ratio,
            image=None,
            start_generation=parent.id,
        )
        return await _video(rt, caller, continued, api_format, admit, inputs)

    return await intake(rt, caller, api_format, idem, prepare)


async def _generation_keyframe(
    rt: Collaborators, caller: Caller, frame: str, task_id: str | None
) -> Task | None:
    """The caller's completed video task a generation keyframe names (400 otherwise)."""
    if task_id is None:
        return None
    async with rt.db.reader() as conn:
        task = await task_store.get_task(conn, task_id, caller.account_id)
    if task is None or task.is_image:
        raise InvalidRequest(f"keyframes.{frame}: generation {task_id[:ID_MAX_CHARS]} not found")
    if task.state is not TaskState.COMPLETED or task.upstream_id is None:
        raise InvalidRequest(f"keyframes.{frame}: generation {task_id} is {task.state}, not completed")
    return task


def _check_ray32(aspect_ratio: str, duration: str, loop: bool) -> None:
    """What Ray 3.2 cannot do, said in the own and official formats' words (400)."""
    if aspect_ratio not in RAY32_ASPECT_RATIOS:
        raise InvalidRequest(f"aspect_ratio must be one of {', '.join(RAY32_ASPECT_RATIOS)} for {RAY32}")
    if loop and duration == "10s":
        raise InvalidRequest(f"{RAY32} cannot loop a 10s video")


def _options(
    rt: Collaborators, model: str | None, resolution: str | None, duration: str | None
) -> tuple[str, str, str]:
    model = model or rt.settings.default_model
    spec = MODELS.get(model)
    if spec is None:
        raise InvalidRequest(f"model_name must be one of {', '.join(MODELS)}")
    resolution = resolution or "720p"
    if resolution not in spec.resolutions:
        raise InvalidRequest(f"resolution must be one of {', '.join(spec.resolutions)} for {model}")
    normalised = normalise_duration(duration or "5s")
    if normalised is None or normalised not in spec.durations:
        raise InvalidRequest(f"duration must be one of {', '.join(spec.durations)} for {model}")
    return model, resolution, normalised


async def checked_callback(rt: Collaborators, url: str | None, field: str = "notify_hook") -> str | None:
    if not url:
        return None
    try:
        check_url_syntax(url, rt.url_policy)
        host, port = _host_port(url)
        await resolve_checked(host, port, rt.url_policy)
    except UnsafeURL as exc:
        raise InvalidRequest(f"{field}: {exc}") from exc
    return url


def _host_port(url: str) -> tuple[str, int]:
    parsed = URL(url)
    return parsed.host or "", parsed.port or (443 if parsed.scheme == "https" else 80)
