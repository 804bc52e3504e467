"""The rest of the Dream Machine API on the task engine: Photon images, image and video reframe,
video modify, upscale and add audio.

Each submit checks its request, keeps every input image or video as our own copy (fetched through
netguard, checked by content), prices and holds it, and sends it to a channel that speaks the official
API (upscale and audio: the channel that made the video). From there the task is followed, copied,
probed and called back like any other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

import anyio

from dreamrelay.domain.api_format import SHARED_VIDEOS, ApiFormat
from dreamrelay.domain.catalog import (
    ADD_AUDIO,
    ASPECT_RATIOS,
    DM_IMAGE_ACTIONS,
    DREAM_MACHINE,
    GENERATE_IMAGE,
    MODIFY_VIDEO,
    OFFICIAL_TO_OWN,
    REFRAME_IMAGE,
    SOURCE_VIDEO_MAX_SECONDS,
    UPSCALE_RESOLUTIONS,
    UPSCALE_VIDEO,
    source_duration,
)
from dreamrelay.domain.errors import InvalidRequest, StorageUnavailable, TaskNotFound
from dreamrelay.domain.inputs import ModifyInput, PhotonInput, Reference, ReframeInput
from dreamrelay.domain.requests import DreamMachineRequest, PriceKey, VideoRequest
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.formats.families import OFFICIAL
from dreamrelay.media import probe
from dreamrelay.media.storage import StorageError
from dreamrelay.services import customer_urls
from dreamrelay.services.auth import Caller
from dreamrelay.services.idempotency import Idempotency
from dreamrelay.services.images import TaskInputs, store_image
from dreamrelay.services.intake import Admit, Collaborators, Order, fetching_source, intake
from dreamrelay.services.submit import checked_callback
from dreamrelay.store import channels as channel_store
from dreamrelay.store import tasks as task_store
from dreamrelay.upstreams import kinds

MAX_SOURCE_VIDEO_BYTES = 200 * 1024 * 1024
SOURCE_FETCH_SECONDS = 20  # a fetch holds one of the process's few source slots at most this long


async def submit_image(
    rt: Collaborators, caller: Caller, given: PhotonInput, idem: Idempotency | None
) -> Task:
    async def prepare(admit: Admit, inputs: TaskInputs) -> Order:
        caller.check_model(given.model)
        callback_url = await checked_callback(rt, given.callback_url, "callback_url")

        async def refs(name: str, items: tuple[Reference, ...]) -> tuple[Reference, ...]:
            urls = [await _input_image(rt, caller, f"{name}[{i}].url", r.url) for i, r in enumerate(items)]
            return tuple(replace(r, url=url) for r, url in zip(items, urls, strict=True))

        await admit(GENERATE_IMAGE, given.model, PriceKey())  # before any reference is fetched
        image_ref = await refs("image_ref", given.image_ref)
        style_ref = await refs("style_ref", given.style_ref)
        character_images = [
            await _input_image(rt, caller, f"character_ref.identity0.images[{i}]", url)
            for i, url in enumerate(given.character_images)
        ]
        modify_ref = given.modify_image_ref
        if modify_ref is not None:
            url = await _input_image(rt, caller, "modify_image_ref.url", modify_ref.url)
            modify_ref = replace(modify_ref, url=url)
        request = DreamMachineRequest(
            action=GENERATE_IMAGE,
            model=given.model,
            prompt=given.prompt,
            aspect_ratio=given.aspect_ratio or "16:9",
            format=given.format or "jpg",
            image_ref=image_ref,
            style_ref=style_ref,
            character_images=tuple(character_images),
            modify_image_ref=modify_ref,
        )
        return Order(GENERATE_IMAGE, given.model, request, callback_url)

    return await intake(rt, caller, OFFICIAL.format, idem, prepare)


async def submit_reframe(
    rt: Collaborators, caller: Caller, given: ReframeInput, idem: Idempotency | None
) -> Task:
    async def prepare(admit: Admit, inputs: TaskInputs) -> Order:
        model = given.model if given.action == REFRAME_IMAGE else OFFICIAL_TO_OWN[given.model]
        caller.check_model(model)
        callback_url = await checked_callback(rt, given.callback_url, "callback_url")
        request = DreamMachineRequest(
            action=given.action,
            model=given.model,
            prompt=given.prompt,
            aspect_ratio=given.aspect_ratio,
            position=given.position,
        )
        if given.action == REFRAME_IMAGE:
            await admit(REFRAME_IMAGE, model, PriceKey())  # before the image is fetched
            media_url = await _input_image(rt, caller, "media.url", given.media_url)
            request = replace(request, media_url=media_url, format=given.format or "jpg")
        else:
            # The price depends on the source's length: admit at the shortest before fetching it.
            await admit(given.action, model, PriceKey(duration="5s"))
            source = await source_video(rt, caller, "media.url", given.media_url)
            first_frame = given.first_frame_url and await _input_image(
                rt, caller, "first_frame.url", given.first_frame_url
            )
            request = replace(
                request,
                media_url=source.url,
                duration=source.bucket,
                source_generation=source.task_id,
                first_frame_url=first_frame or None,
            )
        return Order(given.action, model, request, callback_url)

    return await intake(rt, caller, OFFICIAL.format, idem, prepare)


async def submit_modify(
    rt: Collaborators,
    caller: Caller,
    given: ModifyInput,
    idem: Idempotency | None,
    api_format: ApiFormat = ApiFormat.OFFICIAL,  # the OpenAI Videos API's remix is a modify too
) -> Task:
    async def prepare(admit: Admit, inputs: TaskInputs) -> Order:
        model = OFFICIAL_TO_OWN[given.model]
        caller.check_model(model)
        callback_url = await checked_callback(rt, given.callback_url, "callback_url")
        await admit(MODIFY_VIDEO, model, PriceKey(duration="5s"))  # at the shortest, before fetching
        source = await source_video(rt, caller, "media.url", given.media_url)
        first_frame = given.first_frame_url and await _input_image(
            rt, caller, "first_frame.url", given.first_frame_url
        )
        request = DreamMachineRequest(
            action=MODIFY_VIDEO,
            model=given.model,
            prompt=given.prompt,
            aspect_ratio=source.aspect_ratio,
            mode=given.mode,
            media_url=source.url,
            first_frame_url=first_frame or None,
            duration=source.bucket,
            source_generation=source.task_id,
        )
        return Order(MODIFY_VIDEO, model, request, callback_url)

    return await intake(rt, caller, api_format, idem, prepare)


async def submit_upscale(
    rt: Collaborators,
    caller: Caller,
    parent_id: str,
    resolution: str | None,
    callback_url: str | None,
    idem: Idempotency | None,
) -> Task:
    async def prepare(admit: Admit, inputs: TaskInputs) -> Order:
        parent = await _video_parent(rt, caller, parent_id, "upscaled")
        before = VideoRequest.from_stored(parent.request).resolution
        target = resolution or "1080p"
        if target not in UPSCALE_RESOLUTIONS:
            raise InvalidRequest(f"resolution must be one of {', '.join(UPSCALE_RESOLUTIONS)}")
        if before in UPSCALE_RESOLUTIONS and UPSCALE_RESOLUTIONS.index(target) <= UPSCALE_RESOLUTIONS.index(
            before
        ):
            raise InvalidRequest(
                f"generation {parent.id} is already {before}; upscale to a higher resolution"
            )
        checked = await checked_callback(rt, callback_url, "callback_url")
        request = _from_parent(UPSCALE_VIDEO, parent, resolution=target)
        return Order(UPSCALE_VIDEO, parent.model, request, checked, parent)

    return await intake(rt, caller, OFFICIAL.format, idem, prepare)


async def submit_audio(
    rt: Collaborators,
    caller: Caller,
    parent_id: str,
    prompt: str,
    negative_prompt: str,
    callback_url: str | None,
    idem: Idempotency | None,
) -> Task:
    async def prepare(admit: Admit, inputs: TaskInputs) -> Order:
        parent = await _video_parent(rt, caller, parent_id, "given audio")
        checked = await checked_callback(rt, callback_url, "callback_url")
        request = _from_parent(ADD_AUDIO, parent, prompt=prompt, negative_prompt=negative_prompt)
        return Order(ADD_AUDIO, parent.model, request, checked, parent)

    return await intake(rt, caller, OFFICIAL.format, idem, prepare)


# ---- shared steps -----------------------------------------------------------------------------------


def _from_parent(action: str, parent: Task, prompt: str | None = None, **values: Any) -> DreamMachineRequest:
    """An upscale or audio of `parent`: its prompt, frame and length carry on."""
    base = VideoRequest.from_stored(parent.request)
    return DreamMachineRequest(
        action=action,
        prompt=base.prompt if prompt is None else prompt,
        aspect_ratio=base.aspect_ratio,
        resolution=values.pop("resolution", base.resolution),
        duration=base.duration,
        source_generation=parent.id,
        parent_upstream_id=parent.upstream_id,
        **values,
    )


async def _video_parent(rt: Collaborators, caller: Caller, parent_id: str, verb: str) -> Task:
    """The caller's completed video that an upscale or audio applies to, made on an official channel."""
    async with rt.db.reader() as conn:
        parent = (
            await task_store.get_task(conn, parent_id, caller.account_id) if len(parent_id) <= 64 else None
        )
        channels = {c.id: c for c in await channel_store.list_channels(conn)}
    if parent is None or not SHARED_VIDEOS.shows(parent) or parent.action in DM_IMAGE_ACTIONS:
        raise TaskNotFound(f"generation {parent_id[:64]} not found")
    caller.check_model(parent.model)  # the new task is made with the video's model: the key's rule holds
    if parent.state is not TaskState.COMPLETED or parent.upstream_id is None:
        raise InvalidRequest(
            f"generation {parent.id} is {parent.state}; only a completed video can be {verb}"
        )
    channel = channels.get(parent.channel_id or -1)
    if channel is None or not kinds.makes(channel, DREAM_MACHINE):
        raise InvalidRequest(f"generation {parent.id} was made by a channel that cannot be asked for this")
    return parent


async def _input_image(rt: Collaborators, caller: Caller, field: str, url: str) -> str:
    """An input picture: one of the caller's own outputs used as it is (by its URL: a Photon image,
    a video's thumbnail or last frame), else our checked copy of whatever the URL or data URI holds."""
    own_prefix = f"{rt.media_base_url}/tasks/"
    if not url.startswith(own_prefix):
        return await store_image(rt, field, url)
    task_id = url[len(own_prefix) :].split("/", 1)[0]
    async with rt.db.reader() as conn:
        task = await task_store.get_task(conn, task_id, caller.account_id) if len(task_id) <= 64 else None
    media = (task.media or {}) if task and task.state is TaskState.COMPLETED else {}
    keys = [i["key"] for i in media.get("images", [])]
    keys += [media[name]["key"] for name in ("thumbnail", "last_frame") if name in media]
    if url not in {f"{rt.media_base_url}/{key}" for key in keys}:
        raise InvalidRequest(f"{field}: no image of yours is at this URL")
    return url


@dataclass(frozen=True)
class SourceVideo:
    url: str  # our copy (or our own output) that upstream fetches
    seconds: float
    bucket: str  # the price list's duration
    aspect_ratio: str  # the listed ratio nearest to its frame
    task_id: str | None  # our task whose output it is, if any


async def source_video(rt: Collaborators, caller: Caller, field: str, url: str) -> SourceVideo:
    """A video to reframe or modify: one of the caller's own outputs (by its URL), or a URL fetched
    through netguard, checked to be a playable video of at most SOURCE_VIDEO_MAX_SECONDS, and kept."""
    own_prefix = f"{rt.media_base_url}/tasks/"
    if url.startswith(own_prefix):
        return await _own_output(rt, caller, field, url, url[len(own_prefix) :].split("/", 1)[0])
    # Streamed to a scratch file (never held in memory), a few at once per process; the caller was
    # admitted (money, cap, in-flight) before this fetch.
    async with (
        fetching_source(rt, caller),
        customer_urls.fetched_video(
            rt, field, url, limit=MAX_SOURCE_VIDEO_BYTES, timeout_seconds=SOURCE_FETCH_SECONDS
        ) as path,
    ):
        try:
            facts = await anyio.to_thread.run_sync(probe.probe_video, path)
        except probe.MediaError as exc:
            raise InvalidRequest(f"{field}: not a playable video ({exc})") from exc
        key = f"inputs/{uuid.uuid4()}.mp4"
        try:
            await rt.storage.put_file(key, path)
        except StorageError as exc:
            raise StorageUnavailable(f"{field}: the video could not be stored; try again shortly") from exc
    return _source(field, f"{rt.media_base_url}/{key}", facts.duration, facts.width, facts.height, None)


async def _own_output(rt: Collaborators, caller: Caller, field: str, url: str, task_id: str) -> SourceVideo:
    async with rt.db.reader() as conn:
        task = await task_store.get_task(conn, task_id, caller.account_id) if len(task_id) <= 64 else None
    video = (task.media or {}).get("video") if task and task.state is TaskState.COMPLETED else None
    if task is None or video is None or url != f"{rt.media_base_url}/{video['key']}":
        raise InvalidRequest(f"{field}: no video of yours is at this URL")
    return _source(field, url, float(video["duration"]), int(video["width"]), int(video["height"]), task.id)


def _source(
    field: str, url: str, seconds: float, width: int, height: int, task_id: str | None
) -> SourceVideo:
    bucket = source_duration(seconds)
    if bucket is None or seconds <= 0:
        raise InvalidRequest(f"{field}: the video must be at most {SOURCE_VIDEO_MAX_SECONDS:.0f} s long")
    ratio = width / max(height, 1)
    nearest = min(ASPECT_RATIOS, key=lambda r: abs(int(r.split(":")[0]) / int(r.split(":")[1]) - ratio))
    return SourceVideo(url=url, seconds=seconds, bucket=bucket, aspect_ratio=nearest, task_id=task_id)
