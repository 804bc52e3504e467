"""Agents API generations (/agents/v1): check the request, make every reference ours, price, dispatch.

Every ImageRef becomes something any upstream can reach: an image or video we fetched (netguard)
or decoded, checked by content and stored; a file of the caller's (Files API); or a prior
generation of the caller's, sent upstream by its upstream id — which pins the new task to the
channel that made it, as extend does.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field, replace
from pathlib import Path

from dreamrelay.domain import agents as rules
from dreamrelay.domain.catalog import (
    AGENTS_VIDEO_TYPES,
)
from dreamrelay.domain.errors import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    StorageUnavailable,
    TaskNotReady,
)
from dreamrelay.domain.inputs import AgentsInput, ImageRef
from dreamrelay.domain.requests import AgentsRequest, UpstreamRef
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.formats.families import AGENTS
from dreamrelay.media import probe
from dreamrelay.media.storage import StorageError, scratch_copy
from dreamrelay.services import agent_files, customer_urls
from dreamrelay.services.auth import Caller
from dreamrelay.services.idempotency import Idempotency
from dreamrelay.services.images import TaskInputs, store_image
from dreamrelay.services.intake import Admit, Collaborators, Order, fetching_source, intake
from dreamrelay.store import tasks as task_store

MAX_SOURCE_VIDEO_BYTES = agent_files.MAX_VIDEO_BYTES
MAX_EDIT_SOURCE_SECONDS = 18.0


@dataclass
class _Refs:
    """What resolving a request's references found: the parents it chains from, and a video source's
    length (which prices an edit or reframe)."""

    inputs: TaskInputs
    parents: list[Task] = field(default_factory=list)
    source_seconds: float | None = None


async def create(rt: Collaborators, caller: Caller, given: AgentsInput, idem: Idempotency | None) -> Task:
    async def prepare(admit: Admit, inputs: TaskInputs) -> Order:
        kind, model = rules.kind_and_model(given)
        caller.check_model(model)
        rules.check_combination(given, kind, model)
        # Money and limits before anything is fetched (an edit or reframe at its cheapest length);
        # the insert checks them again, atomically, at the real price.
        await admit(rules.action(kind, extends=False), model, rules.provisional_price_key(given, kind))
        refs = _Refs(inputs)
        request = await _resolve(rt, caller, given, kind, model, refs)
        parents = refs.parents
        if len({p.channel_id for p in parents}) > 1:
            raise InvalidRequest(
                "every generation_id of one request must come from the same upstream channel"
            )
        return Order(
            rules.action(kind, extends=bool(parents)), model, request, None, parents[0] if parents else None
        )

    return await intake(rt, caller, AGENTS.format, idem, prepare)


async def _resolve(
    rt: Collaborators, caller: Caller, given: AgentsInput, kind: str, model: str, refs: _Refs
) -> AgentsRequest:
    """The request with every reference made ours, in the order the customer gave them."""
    request = AgentsRequest(
        kind=kind,
        model=model,
        prompt=given.prompt,
        aspect_ratio=given.aspect_ratio,
        output_format=given.output_format,
        style=given.style,
    )
    if given.source is not None:
        want = "image" if kind == "image_edit" else "video"
        request = replace(request, source=await _ref(rt, caller, given.source, "source", want, refs))
    if given.image_ref:
        image_ref = [
            await _ref(rt, caller, ref, f"image_ref[{i}]", "image", refs)
            for i, ref in enumerate(given.image_ref)
        ]
        request = replace(request, image_ref=tuple(image_ref))
    if kind not in AGENTS_VIDEO_TYPES:
        return request
    video = given.video
    options = rules.video_options(video)
    options.setdefault("resolution", "720p")
    if video is not None:
        if video.start_frame is not None:
            start = await _ref(rt, caller, video.start_frame, "video.start_frame", "frame", refs)
            request = replace(request, start_frame=start)
        if video.end_frame is not None:
            end = await _ref(rt, caller, video.end_frame, "video.end_frame", "frame", refs)
            request = replace(request, end_frame=end)
        if video.keyframes:
            keyframes = [
                await _ref(rt, caller, ref, f"video.keyframes[{i}]", "frame", refs)
                for i, ref in enumerate(video.keyframes)
            ]
            request = replace(request, keyframes=tuple(keyframes))
        if video.edit is not None:
            request = replace(request, edit=rules.edit_settings(video.edit))
            if video.edit.keyframes:
                edit_keyframes = [
                    await _ref(rt, caller, ref, f"video.edit.keyframes[{i}]", "image", refs)
                    for i, ref in enumerate(video.edit.keyframes)
                ]
                request = replace(request, edit_keyframes=tuple(edit_keyframes))
    duration = (
        options.get("duration", "5s") if kind == "video" else rules.priced_duration(refs.source_seconds)
    )
    return replace(request, video=options, duration=duration)


async def _ref(
    rt: Collaborators, caller: Caller, ref: ImageRef, field: str, want: str, refs: _Refs
) -> UpstreamRef:
    """One ImageRef as upstream will get it. `want`: 'image' (an image position), 'video' (an edit or
    reframe source) or 'frame' (start/end frame or keyframe: an image, or a prior video to continue)."""
    given = [name for name in ("url", "data", "generation_id", "file_id") if getattr(ref, name) is not None]
    if len(given) != 1:
        raise InvalidRequest(f"{field}: give exactly one of url, data, generation_id, file_id")
    if ref.generation_id is not None:
        return await _generation_ref(rt, caller, ref.generation_id, field, want, refs)
    if ref.file_id is not None:
        url, media_type = await agent_files.usable_url(rt, caller, ref.file_id, field)
        if (media_type == "video/mp4") != (want == "video"):
            raise InvalidRequest(
                f"{field}: file {ref.file_id} is {media_type}, not the {want} this position takes"
            )
        if want == "video":
            refs.source_seconds = await _stored_video_seconds(rt, url)
        return UpstreamRef(url=url, media_type=media_type)
    if want == "video":
        media_type = ref.media_type or ""
        if not media_type.startswith("video/"):
            raise InvalidRequest(f"{field}: a video source needs media_type video/mp4")
        url, seconds = await _store_video(rt, caller, field, ref, refs.inputs)
        refs.source_seconds = seconds
        return UpstreamRef(url=url, media_type="video/mp4")
    if ref.data is not None and not ref.media_type:
        raise InvalidRequest(f"{field}: media_type is required with data")
    url = await store_image(rt, field, ref.url if ref.url is not None else ref.data or "", refs.inputs)
    return UpstreamRef(url=url, media_type="image/png" if url.endswith(".png") else "image/jpeg")


async def _generation_ref(
    rt: Collaborators, caller: Caller, generation_id: str, field: str, want: str, refs: _Refs
) -> UpstreamRef:
    async with rt.db.reader() as conn:
        parent = (
            await task_store.get_task(conn, generation_id, caller.account_id)
            if len(generation_id) <= 64
            else None
        )
    if parent is None or not AGENTS.listing.shows(parent) or parent.deleted_at is not None:
        raise NotFound(f"{field}: generation {generation_id[:64]} not found")
    if parent.state is not TaskState.COMPLETED or parent.upstream_id is None or not parent.media:
        raise TaskNotReady(f"{field}: generation {generation_id} is {parent.state}, not completed")
    if parent.makes_images:
        if want == "video":
            raise InvalidRequest(f"{field}: generation {generation_id} is an image, not a video")
        image = parent.media["images"][0]
        return UpstreamRef(url=f"{rt.media_base_url}/{image['key']}", media_type=image["media_type"])
    if want == "image":
        raise InvalidRequest(f"{field}: generation {generation_id} is a video, not an image")
    refs.parents.append(parent)
    if want == "video":
        refs.source_seconds = float(parent.media["video"]["duration"])
    return UpstreamRef(generation_id=parent.upstream_id)


async def _store_video(
    rt: Collaborators, caller: Caller, field: str, ref: ImageRef, inputs: TaskInputs
) -> tuple[str, float]:
    """A video source given by URL (fetched through netguard) or base64: checked, stored as an input."""
    if ref.url is not None:
        # Streamed to a scratch file (never held in memory), a few at once per process.
        async with (
            fetching_source(rt, caller),
            customer_urls.fetched_video(
                rt, field, ref.url, limit=MAX_SOURCE_VIDEO_BYTES, timeout_seconds=60
            ) as path,
        ):
            seconds = await _video_seconds(field, path)
            key = inputs.next_key("mp4")
            await _put(rt, field, key, path)
        return f"{rt.media_base_url}/{key}", seconds
    text = "".join((ref.data or "").split())
    if len(text) // 4 * 3 > MAX_SOURCE_VIDEO_BYTES:
        raise PayloadTooLarge(f"{field}: the video is larger than {MAX_SOURCE_VIDEO_BYTES} bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"{field}: data is not valid base64") from exc
    seconds = await _video_seconds(field, data)
    key = inputs.next_key("mp4")
    await _put(rt, field, key, data)
    return f"{rt.media_base_url}/{key}", seconds


async def _put(rt: Collaborators, field: str, key: str, source: bytes | Path) -> None:
    try:
        if isinstance(source, Path):
            await rt.storage.put_file(key, source)
        else:
            await rt.storage.put_bytes(key, source)
    except StorageError as exc:
        raise StorageUnavailable(f"{field}: the video could not be stored; try again shortly") from exc


async def _video_seconds(field: str, source: bytes | Path) -> float:
    try:
        info = await probe.probe_video_off_loop(source)
    except probe.MediaError as exc:
        raise InvalidRequest(f"{field}: the video cannot be decoded ({exc})") from exc
    if info.duration > MAX_EDIT_SOURCE_SECONDS:
        raise InvalidRequest(f"{field}: a source video may be at most {MAX_EDIT_SOURCE_SECONDS:.0f} s long")
    return info.duration


async def _stored_video_seconds(rt: Collaborators, url: str) -> float:
    """The length of a stored file's video, probed from a scratch copy (never read into memory)."""
    key = url.removeprefix(f"{rt.media_base_url}/")
    try:
        async with scratch_copy(rt.storage, key) as path:
            if path is None:
                raise InvalidRequest("the file's bytes are gone")
            return await _video_seconds("file", path)
    except StorageError as exc:
        raise StorageUnavailable("the file could not be read; try again shortly") from exc
