"""The OpenAI Videos API on the task engine: a create's fields in our words (size and seconds mapped onto
each model, errors naming the field), a `Video` with its progress and polling hint, cursor pages, the
downloadable content."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, replace
from typing import Any, Protocol

from dreamrelay.body_cache import videos_key
from dreamrelay.domain.catalog import (
    ASPECT_RATIOS,
    KLING_DURATIONS,
    KLING_RESOLUTION_MODES,
    KLING_VIDEO_MODELS,
    KLING_VIDEO_RATIOS,
    MODELS,
    OFFICIAL_TO_OWN,
    RAY32,
    RAY32_ASPECT_RATIOS,
    SEEDANCE_MODELS,
    SEEDANCE_SIZES,
)
from dreamrelay.domain.errors import InvalidRequest, NotFound, TaskNotReady
from dreamrelay.domain.ids import is_id, shown
from dreamrelay.domain.inputs import GenerationInput, KlingVideoInput, ModifyInput
from dreamrelay.domain.requests import SeedanceRequest
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.domain.timings import MAX_DELAY, Durations, task_kind
from dreamrelay.formats import videos as fmt
from dreamrelay.formats.families import VIDEOS
from dreamrelay.services import ark, dream_machine, intake, kling_video, reads, submit
from dreamrelay.services.auth import Caller
from dreamrelay.services.idempotency import Idempotency
from dreamrelay.store import tasks as task_store


class Collaborators(intake.Collaborators, reads.Collaborators, Protocol):
    durations: Durations  # how long tasks take, learnt from the ones that finish


# Every name a create may give: the catalog's own names and the official ones.
MODEL_NAMES = {**{name: name for name in MODELS}, **OFFICIAL_TO_OWN}
# Without any learnt timing a video is guessed to take this long (the progress only).
GUESSED_SECONDS = 60.0
PAGE_DEFAULT, PAGE_MAX = 20, 100
HINT_MIN_SECONDS = 1.0  # what the SDKs wait without a hint
HINT_SHARE = 0.1  # the hint's share of a task's expected duration
VARIANTS = ("video", "thumbnail", "spritesheet")
# A remix is Luma's modify of the finished video, as strongly as the prompt asks ("flex": the motion and
# framing kept, the look free); models without a modify are remixed by ray-2.
REMIX_MODE = "flex_1"
REMIX_MODELS = ("ray-2", "ray-flash-2")


@dataclass(frozen=True)
class Create:
    """A create's fields as sent (JSON or multipart), before they are checked."""

    prompt: str
    model: str | None = None
    seconds: str | None = None
    size: str | None = None
    image: str | None = None  # input_reference: an image URL or a data: URL (a file part becomes one)
    file_id: str | None = None
    callback_url: str | None = None


def given(create: Create, default_model: str) -> GenerationInput:
    """The create as a generation, or a 400 naming the field a model cannot honour."""
    if not create.prompt.strip():
        raise InvalidRequest("prompt must not be empty", param="prompt")
    name = create.model or default_model
    model = MODEL_NAMES.get(name)
    if model is None:
        names = ", ".join(
            dict.fromkeys([*(fmt.shown_model(m) for m in MODELS), *KLING_VIDEO_MODELS, *SEEDANCE_MODELS])
        )
        raise InvalidRequest(f"model must be one of {names}", param="model", code="invalid_value")
    spec = MODELS[model]
    duration = f"{spec.durations[0]}"
    if create.seconds is not None:
        duration = f"{str(create.seconds).strip()}s"
        if duration not in spec.durations:
            allowed = ", ".join(fmt.seconds_of(d) for d in spec.durations)
            raise InvalidRequest(
                f"seconds must be one of {allowed} for {fmt.shown_model(model)}",
                param="seconds",
                code="invalid_value",
            )
    aspect_ratio, resolution = "16:9", "720p"
    if create.size is not None:
        parsed = fmt.parse_size(create.size)
        ratios = RAY32_ASPECT_RATIOS if model == RAY32 else ASPECT_RATIOS
        if parsed is None or parsed[0] not in ratios or parsed[1] not in spec.resolutions:
            sizes = ", ".join(fmt.size_of(r, q) for r in ratios for q in spec.resolutions)
            raise InvalidRequest(
                f"size must be one of {sizes} for {fmt.shown_model(model)}",
                param="size",
                code="invalid_value",
            )
        aspect_ratio, resolution = parsed
    _refuse_file_id(create)
    return GenerationInput(
        prompt=create.prompt,
        aspect_ratio=aspect_ratio,
        model=model,
        resolution=resolution,
        duration=duration,
        image=create.image,
        callback_url=create.callback_url,
    )


def _refuse_file_id(create: Create) -> None:
    if create.file_id is not None:
        raise InvalidRequest(
            "input_reference.file_id is not supported; send the image as a file or an image_url",
            param="input_reference",
        )


def data_url(data: bytes, content_type: str) -> str:
    """A file part as the data: URL the image intake reads (it checks what the bytes really are)."""
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


async def create(rt: Collaborators, caller: Caller, fields: Create, idem: Idempotency | None) -> bytes:
    model = fields.model or rt.settings.default_model
    if model in KLING_VIDEO_MODELS:
        kling = kling_given(fields, model)
        task = await kling_video.submit(rt, caller, kling, api_format=VIDEOS.format, idem=idem)
    elif model in SEEDANCE_MODELS:
        request, images = seedance_given(fields, model)
        task = await ark.submit(
            rt, caller, request, images, fields.callback_url, VIDEOS.format, idem, "input_reference"
        )
    else:
        video = given(fields, rt.settings.default_model)
        task = await submit.submit(rt, caller, video, api_format=VIDEOS.format, idem=idem)
    return fmt.encode_video(task, progress(rt, task, time.time()))


def kling_given(create: Create, model: str) -> KlingVideoInput:
    """A create for a Kling video model: `seconds` 5 or 10, `size` one of its three ratios at 720 lines
    (std) or 1080 (pro), an input_reference image makes it image2video; 400 naming the field otherwise."""
    if not create.prompt.strip():
        raise InvalidRequest("prompt must not be empty", param="prompt")
    seconds = str(create.seconds).strip() if create.seconds is not None else "5"
    if seconds not in {str(d) for d in KLING_DURATIONS}:
        allowed = ", ".join(str(d) for d in KLING_DURATIONS)
        raise InvalidRequest(
            f"seconds must be one of {allowed} for {model}", param="seconds", code="invalid_value"
        )
    ratio, mode = "16:9", "std"
    if create.size is not None:
        parsed = fmt.parse_size(create.size)
        modes = KLING_RESOLUTION_MODES
        if parsed is None or parsed[0] not in KLING_VIDEO_RATIOS or parsed[1] not in modes:
            sizes = ", ".join(fmt.size_of(r, q) for r in KLING_VIDEO_RATIOS for q in modes)
            raise InvalidRequest(
                f"size must be one of {sizes} for {model}", param="size", code="invalid_value"
            )
        ratio, mode = parsed[0], modes[parsed[1]]
    _refuse_file_id(create)
    return KlingVideoInput(
        prompt=create.prompt,
        model=model,
        mode=mode,
        aspect_ratio=ratio,
        duration=int(seconds),
        image=create.image,
        callback_url=create.callback_url,
    )


def seedance_given(create: Create, model: str) -> tuple[SeedanceRequest, list[tuple[str, str]]]:
    """A create for a Seedance model: `seconds` a whole number in the model's range, `size` one of the
    frames Seedance makes at the model's resolutions (1248x704 is 720p 16:9), input_reference its first
    frame when the model takes one; 400 naming the field otherwise."""
    if not create.prompt.strip():
        raise InvalidRequest("prompt must not be empty", param="prompt")
    spec = SEEDANCE_MODELS[model]
    low, high = spec.durations
    seconds = str(create.seconds).strip() if create.seconds is not None else "5"
    if not seconds.isdigit() or not low <= int(seconds) <= high:
        raise InvalidRequest(
            f"seconds must be a whole number from {low} to {high} for {model}",
            param="seconds",
            code="invalid_value",
        )
    sizes = {
        f"{width}x{height}": (resolution, ratio)
        for resolution in spec.resolutions
        for ratio, (width, height) in SEEDANCE_SIZES[resolution].items()
    }
    resolution, ratio = "720p", "16:9"
    if create.size is not None:
        found = sizes.get(create.size.strip().lower())
        if found is None:
            raise InvalidRequest(
                f"size must be one of {', '.join(sizes)} for {model}",
                param="size",
                code="invalid_value",
            )
        resolution, ratio = found
    _refuse_file_id(create)
    images: list[tuple[str, str]] = []
    if create.image is not None:
        if "first_frame" not in spec.roles:
            raise InvalidRequest(
                f"{model} takes no input_reference (no first frame); use a model that takes images",
                param="input_reference",
            )
        images.append(("first_frame", create.image))
    request = SeedanceRequest(
        prompt=create.prompt, model=model, resolution=resolution, ratio=ratio, duration=int(seconds)
    )
    return request, images


def progress(rt: Collaborators, task: Task, now: float) -> int:
    """0–99 while it runs: its age against how long such tasks took lately (or a guess)."""
    if task.state is TaskState.PENDING and task.upstream_id is None:
        return 0
    expected = rt.durations.expected(task_kind(task)) or GUESSED_SECONDS
    return max(0, min(99, int(100 * (now - task.created_at) / expected)))


def poll_after_ms(rt: Collaborators, task: Task, now: float) -> int:
    """How long to wait before asking again. The SDKs keep the first hint for the whole wait, so it is
    one steady interval: a tenth of how long such tasks took lately (about ten asks a task, seen at most
    a tenth of its time late); without that knowledge the learnt schedule's delay for a task this old
    (domain/timings.py). Never under the 1 s the SDKs wait without a hint, never over 15 s."""
    expected = rt.durations.expected(task_kind(task))
    wait = expected * HINT_SHARE if expected is not None else rt.durations.next_poll_delay(task, now)
    return int(1000 * min(max(wait, HINT_MIN_SECONDS), MAX_DELAY))


async def get_task(rt: Collaborators, caller: Caller, video_id: str) -> Task:
    if not is_id(video_id):
        raise NotFound(f"video {shown(video_id)} not found", param="video_id")
    task = await reads.find_task(rt, caller, video_id, VIDEOS.listing)  # in flight: from the mirror
    if task is None:
        raise NotFound(f"video {video_id} not found", param="video_id")
    return task


async def get_video(rt: Collaborators, caller: Caller, video_id: str) -> tuple[bytes, int | None]:
    """The `Video` and, while it runs, the milliseconds after which to ask again; a finished one's body
    is kept like the other families'."""
    key = videos_key(video_id)
    cached = rt.body_cache.get(key, caller.account_id)
    if cached is not None:
        return cached, None
    task = await get_task(rt, caller, video_id)
    now = time.time()
    body = fmt.encode_video(task, progress(rt, task, now))
    if task.state.is_terminal:
        rt.body_cache.put(key, task.account_id, body)
        return body, None
    return body, poll_after_ms(rt, task, now)


async def list_page(rt: Collaborators, caller: Caller, *, after: str | None, limit: int, order: str) -> bytes:
    mark = await get_task(rt, caller, after) if after is not None else None
    async with rt.db.reader() as conn:
        page, more = await task_store.list_video_tasks(
            conn, caller.account_id, limit=limit, after=mark, ascending=order == "asc"
        )
    now = time.time()
    return fmt.encode_page([fmt.video(t, progress(rt, t, now)) for t in page], more)


def content_key(task: Task, variant: str) -> str:
    """The stored object of a finished video's `variant`; an error in OpenAI's shape otherwise."""
    if task.state is not TaskState.COMPLETED or not task.media or "video" not in task.media:
        raise TaskNotReady(
            f"video {task.id} is {fmt.STATUSES[task.state]}; its content exists once it is completed",
            code="video_not_ready",
            headers={"x-should-retry": "false"},  # the SDKs retry a 409 unless told not to
        )
    media: dict[str, Any] = task.media
    if variant == "video":
        return str(media["video"]["key"])
    if variant == "thumbnail":
        return str(media["thumbnail"]["key"])
    raise NotFound("this relay makes no spritesheet; ask for video or thumbnail", param="variant")


async def finished_parent(rt: Collaborators, caller: Caller, video_id: str, param: str) -> Task:
    """The caller's completed video a remix or an extension starts from; errors name `param`."""
    if not is_id(video_id):
        raise NotFound(f"video {shown(video_id)} not found", param=param)
    async with rt.db.reader() as conn:
        parent = await task_store.get_task(conn, video_id, caller.account_id)
    if parent is None or not VIDEOS.listing.shows(parent) or parent.makes_images:
        raise NotFound(f"video {video_id} not found", param=param)
    if parent.state is not TaskState.COMPLETED or not parent.media or "video" not in parent.media:
        raise InvalidRequest(
            f"video {video_id} is {fmt.STATUSES[parent.state]}; only a completed video can be used",
            param=param,
            code="video_not_ready",
        )
    return parent


async def remix(
    rt: Collaborators, caller: Caller, video_id: str, prompt: str, idem: Idempotency | None
) -> bytes:
    """A new video: the finished one modified as `prompt` says (its remixed_from_video_id is it)."""
    if not prompt.strip():
        raise InvalidRequest("prompt must not be empty", param="prompt")
    parent = await finished_parent(rt, caller, video_id, "video_id")
    shown_name = fmt.shown_model(parent.model)
    given = ModifyInput(
        model=shown_name if shown_name in REMIX_MODELS else REMIX_MODELS[0],
        mode=REMIX_MODE,
        media_url=f"{rt.media_base_url}/{parent.media['video']['key']}" if parent.media else "",
        prompt=prompt,
    )
    task = await dream_machine.submit_modify(rt, caller, given, idem, api_format=VIDEOS.format)
    return fmt.encode_video(task, progress(rt, task, time.time()))


async def extend(
    rt: Collaborators,
    caller: Caller,
    video_id: str,
    prompt: str,
    seconds: str | None,
    callback_url: str | None,
    idem: Idempotency | None,
) -> bytes:
    """A video continuing the finished one, on the channel that made it (its last frame first)."""
    parent = await finished_parent(rt, caller, video_id, "video")
    request = parent.request
    size = fmt.size_of(request.get("aspect_ratio") or "16:9", request.get("resolution") or "720p")
    create = Create(
        prompt=prompt,
        model=parent.model,
        seconds=seconds,
        size=size,
        callback_url=callback_url,
    )
    continued = replace(given(create, parent.model), start_generation=parent.id)
    task = await submit.submit(
        rt,
        caller,
        continued,
        api_format=VIDEOS.format,
        idem=idem,
    )
    return fmt.encode_video(task, progress(rt, task, time.time()))
