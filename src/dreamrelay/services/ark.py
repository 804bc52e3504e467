"""Volcengine Ark's content-generation tasks (Seedance) on the task engine: a create body read as Ark
reads it (domain/ark.py) and checked against the catalog's model, its images made ours through netguard;
get, list with Ark's filters and pages, and Ark's one delete verb (a queued task is cancelled and its hold
released; a finished one is deleted with its media; a running one is refused, as Ark refuses it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dreamrelay.domain.api_format import ApiFormat
from dreamrelay.domain.ark import ArkInvalid, validate
from dreamrelay.domain.catalog import (
    SEEDANCE_MODELS,
    SEEDANCE_REFERENCE_IMAGES_MAX,
    SEEDANCE_SIZES,
)
from dreamrelay.domain.errors import Conflict, InvalidRequest, NotFound
from dreamrelay.domain.ids import is_id, shown
from dreamrelay.domain.inputs import GenerationInput
from dreamrelay.domain.requests import SeedanceImage, SeedanceRequest
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.formats import ark as fmt
from dreamrelay.formats.families import ARK_TASKS, FAMILIES
from dreamrelay.services import lifecycle, reads, removal
from dreamrelay.services.auth import Caller
from dreamrelay.services.idempotency import Idempotency
from dreamrelay.services.images import TaskInputs, store_image
from dreamrelay.services.intake import Admit, Collaborators, Order, intake
from dreamrelay.services.lifecycle import Change
from dreamrelay.services.submit import checked_callback
from dreamrelay.store import ark_tasks

__all__ = [
    "Collaborators",
    "create",
    "delete",
    "get_task",
    "list_page",
    "request_of",
    "submit",
    "submit_generation",
]

ACTION = "generate"
PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, PAGE_NUM_MAX = 10, 500, 10_000
TASK_IDS_MAX = 100
CANCELLED_REASON = "cancelled by the customer"
_ATTEMPTS = 5  # a worker may move the task between our read and our write


def _invalid(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"the parameter `{param}` {message}", param=param)


def request_of(body: Any) -> tuple[SeedanceRequest, list[tuple[str, str]], str | None]:
    """The create body as our request (images still the customer's URLs, in order with their roles),
    and its callback URL; InvalidRequest naming the parameter for anything Ark or the model refuses."""
    try:
        given = validate(body)
    except ArkInvalid as exc:
        raise InvalidRequest(exc.message, param=exc.param) from None
    spec = SEEDANCE_MODELS.get(given["model"])
    if spec is None:
        raise _invalid("model", f"must be one of {', '.join(SEEDANCE_MODELS)}")
    if given["frames"] is not None:
        raise _invalid("frames", "is not supported here; use duration")
    if given["resolution"] not in spec.resolutions:
        raise _invalid("resolution", f"must be one of {', '.join(spec.resolutions)} for {spec.name}")
    seconds = int(given["seconds"])
    low, high = spec.durations
    if not low <= seconds <= high:
        raise _invalid("duration", f"must be from {low} to {high} for {spec.name}")
    images = given["image_items"]
    for role, _url in images:
        if role not in spec.roles:
            allowed = ", ".join(spec.roles) or "none"
            raise _invalid("content", f"has an image of role {role}; {spec.name} takes {allowed}")
    roles = [role for role, _url in images]
    if roles.count("first_frame") > 1 or roles.count("last_frame") > 1:
        raise _invalid("content", "has more than one first_frame or last_frame")
    if roles.count("reference_image") > SEEDANCE_REFERENCE_IMAGES_MAX:
        raise _invalid("content", f"has more than {SEEDANCE_REFERENCE_IMAGES_MAX} reference images")
    if "reference_image" in roles and len(set(roles)) > 1:
        raise _invalid("content", "mixes reference images with first or last frames")
    request = SeedanceRequest(
        prompt=given["prompt"],
        model=spec.name,
        resolution=given["resolution"],
        ratio=given["ratio"],
        duration=seconds,
        fps=given["fps"],
        seed=given["seed"],
        camera_fixed=given["camera_fixed"],
        watermark=given["watermark"],
        return_last_frame=given["return_last_frame"],
    )
    return request, images, given["callback_url"]


def from_generation(given: GenerationInput, model: str) -> tuple[SeedanceRequest, list[tuple[str, str]]]:
    """An own-format generation (aspect_ratio, resolution, duration "5s", image_url as the first frame and
    image_end_url as the last) for a Seedance model, or a 400 naming the field it cannot express."""
    spec = SEEDANCE_MODELS[model]
    if not given.prompt.strip():
        raise InvalidRequest("prompt must not be empty", param="prompt")
    if given.loop or given.start_generation or given.end_generation:
        raise InvalidRequest(f"{model} makes no loops and continues no generation", param="loop")
    resolution = given.resolution or "720p"
    if resolution not in spec.resolutions:
        raise InvalidRequest(
            f"resolution must be one of {', '.join(spec.resolutions)} for {model}", param="resolution"
        )
    ratio = given.aspect_ratio or "16:9"
    if ratio not in SEEDANCE_SIZES[resolution]:
        ratios = ", ".join(SEEDANCE_SIZES[resolution])
        raise InvalidRequest(f"aspect_ratio must be one of {ratios} for {model}", param="aspect_ratio")
    text = (given.duration or "5s").strip().lower().removesuffix("s")
    low, high = spec.durations
    if not text.isdigit() or not low <= int(text) <= high:
        raise InvalidRequest(f'duration must be from "{low}s" to "{high}s" for {model}', param="duration")
    images = [
        (role, url) for role, url in (("first_frame", given.image), ("last_frame", given.end_image)) if url
    ]
    for role, _url in images:
        if role not in spec.roles:
            raise InvalidRequest(f"{model} takes no {role} image", param="image_url")
    request = SeedanceRequest(
        prompt=given.prompt, model=model, resolution=resolution, ratio=ratio, duration=int(text)
    )
    return request, images


async def create(rt: Collaborators, caller: Caller, body: Any, idem: Idempotency | None) -> Task:
    request, images, callback = request_of(body)
    return await submit(rt, caller, request, images, callback, ApiFormat.ARK, idem)


async def submit(
    rt: Collaborators,
    caller: Caller,
    request: SeedanceRequest,
    images: Sequence[tuple[str, str]],
    callback: str | None,
    api_format: ApiFormat,
    idem: Idempotency | None,
    image_param: str = "content.image_url",
    callback_param: str = "callback_url",
) -> Task:
    """A checked Seedance request as a task made through `api_format` (Ark's, or /v1/videos): its images
    (role, URL) made ours through netguard once money and limits admit it (errors name `image_param`)."""
    caller.check_model(request.model)

    async def prepare(admit: Admit, inputs: TaskInputs) -> Order:
        callback_url = await checked_callback(rt, callback, callback_param)
        kept = request
        if images:  # money and limits before any image is fetched
            await admit(ACTION, request.model, request.price_key)
            stored = [
                SeedanceImage(await store_image(rt, image_param, url, inputs), role) for role, url in images
            ]
            kept = SeedanceRequest(**{**request.__dict__, "images": tuple(stored)})
        return Order(ACTION, request.model, kept, callback_url)

    return await intake(rt, caller, api_format, idem, prepare)


async def submit_generation(
    rt: Collaborators, caller: Caller, given: GenerationInput, api_format: ApiFormat, idem: Idempotency | None
) -> Task:
    """A Seedance video asked for in a shared video format (the own format's generation fields)."""
    request, images = from_generation(given, given.model or "")
    fields = FAMILIES[api_format].fields
    return await submit(
        rt, caller, request, images, given.callback_url, api_format, idem, fields.start_image, fields.callback
    )


async def get_task(rt: reads.Collaborators, caller: Caller, task_id: str) -> Task:
    """The caller's Ark task; 404 `ResourceNotFound` for anything else (or a deleted one)."""
    if not is_id(task_id):
        raise NotFound(f"the task {shown(task_id)} was not found", param="task_id")
    found = await reads.find_task(rt, caller, task_id, ARK_TASKS.listing)
    if found is None:
        raise NotFound(f"the task {task_id} was not found", param="task_id")
    return found


async def list_page(
    rt: Collaborators,
    caller: Caller,
    *,
    page_num: int,
    page_size: int,
    status: str | None,
    model: str | None,
    task_ids: Sequence[str],
) -> bytes:
    async with rt.db.reader() as conn:
        total, bodies = await ark_tasks.page(
            conn,
            caller.account_id,
            ARK_TASKS.listing,
            status=status,
            model=model,
            task_ids=[t for t in task_ids if is_id(t)],
            limit=page_size,
            offset=(page_num - 1) * page_size,
        )
    return fmt.encode_list(total, bodies)


async def delete(rt: removal.Collaborators, caller: Caller, task_id: str) -> None:
    """Ark's delete: queued → cancelled (the hold released, the record kept); finished → deleted with its
    media (a later GET is 404); running → 409, as Ark answers."""
    task = await get_task(rt, caller, task_id)
    for _attempt in range(_ATTEMPTS):
        if task.state.is_terminal:
            await removal.delete(rt, caller, task)
            return
        if task.state is TaskState.PROCESSING:
            raise Conflict("a running task can be neither cancelled nor deleted")
        change = Change(
            state=TaskState.FAILED,
            failure_reason=CANCELLED_REASON,
            failure_code=fmt.CANCELLED,
        )
        done = await lifecycle.transition(rt, task, change)
        if done is not None:
            await removal.cancel_upstream(rt, done)
            return
        task = await get_task(rt, caller, task_id)
    raise Conflict("the task kept changing; try again")
