"""Agents API generations (/agents/v1): check the request, make every reference ours, price, dispatch.

Every ImageRef becomes something any upstream can reach: an image or video we fetched (netguard)
or decoded, checked by content and stored; a file of the caller's (Files API); or a prior
generation of the caller's, sent upstream by its upstream id — which pins the new task to the
channel that made it, as extend does.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from dreamrelay.domain.catalog import (
    AGENTS_VIDEO_TYPES,
    IMAGE_REFS_MAX,
    RAY32,
    RAY32_ASPECT_RATIOS,
    UNI_MODELS,
)
from dreamrelay.domain.errors import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    StorageUnavailable,
    TaskNotReady,
    Unprocessable,
)
from dreamrelay.domain.inputs import AgentsEdit, AgentsInput, AgentsVideo, ImageRef
from dreamrelay.domain.requests import AgentsRequest, PriceKey, UpstreamRef
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import AGENTS_FORMAT, Task
from dreamrelay.media import probe
from dreamrelay.media.storage import StorageError
from dreamrelay.services import agent_files, customer_urls
from dreamrelay.services.auth import Caller
from dreamrelay.services.dispatch import dispatch
from dreamrelay.services.idempotency import Idempotency, Replay, replayed
from dreamrelay.services.images import TaskInputs, kept_for, store_image
from dreamrelay.services.submit import Collaborators, admit, insert, task_by_id
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
    if idem is not None and (earlier := await replayed(rt.db, caller, idem)) is not None:
        return earlier
    kind, model = _kind_and_model(given)
    caller.check_model(model)
    _check_combination(given, kind, model)
    # Money and limits before anything is fetched (an edit or reframe at its cheapest length);
    # `insert` checks them again, atomically, at the real price.
    await admit(rt, caller, _action(kind, []), model, _provisional(given, kind))
    task_id = str(uuid.uuid4())
    try:
        async with kept_for(rt, task_id) as inputs:
            refs = _Refs(inputs)
            request = await _resolve(rt, caller, given, kind, model, refs)
            parents = refs.parents
            if len({p.channel_id for p in parents}) > 1:
                raise InvalidRequest(
                    "every generation_id of one request must come from the same upstream channel"
                )
            action = _action(kind, parents)
            parent_id = parents[0].id if parents else None
            task, channels = await insert(
                rt, caller, action, parent_id, model, request, None, AGENTS_FORMAT, idem, task_id
            )
    except Replay as replay:
        return await task_by_id(rt, replay.task_id)
    pinned = parents[0].channel_id if parents else None
    return await dispatch(rt, task, request, pinned_channel=pinned, channels=channels)


def _provisional(given: AgentsInput, kind: str) -> PriceKey:
    """What prices the request before its sources are known."""
    if kind not in AGENTS_VIDEO_TYPES:
        return PriceKey()
    video = given.video
    return PriceKey(
        resolution=(video.resolution if video else None) or "720p",
        duration=(video.duration if video else None) or "5s",
        hdr=bool(video and video.hdr),
    )


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
    options = _options(video)
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
            request = replace(request, edit=_edit_settings(video.edit))
            if video.edit.keyframes:
                edit_keyframes = [
                    await _ref(rt, caller, ref, f"video.edit.keyframes[{i}]", "image", refs)
                    for i, ref in enumerate(video.edit.keyframes)
                ]
                request = replace(request, edit_keyframes=tuple(edit_keyframes))
    duration = options.get("duration", "5s") if kind == "video" else _duration_of(refs.source_seconds)
    return replace(request, video=options, duration=duration)


def _options(video: AgentsVideo | None) -> dict[str, Any]:
    """The video options given that are sent as they are (references and edit apart)."""
    if video is None:
        return {}
    given: dict[str, Any] = {
        "duration": video.duration,
        "resolution": video.resolution,
        "loop": video.loop,
        "hdr": video.hdr,
        "exr_export": video.exr_export,
        "keyframe_indexes": None if video.keyframe_indexes is None else list(video.keyframe_indexes),
        "source_position": video.source_position,
    }
    return {name: value for name, value in given.items() if value is not None}


def _edit_settings(edit: AgentsEdit) -> dict[str, Any]:
    given: dict[str, Any] = {
        "strength": edit.strength,
        "auto_controls": edit.auto_controls,
        "controls": edit.controls,
        "keyframe_indexes": None if edit.keyframe_indexes is None else list(edit.keyframe_indexes),
    }
    return {name: value for name, value in given.items() if value is not None}


def _kind_and_model(body: AgentsInput) -> tuple[str, str]:
    kind = body.type or ("video" if body.model == RAY32 else "image")
    if kind == "layering":
        raise InvalidRequest("type layering is not offered by this relay")
    video = kind in AGENTS_VIDEO_TYPES
    model = body.model or (RAY32 if video else UNI_MODELS[0])
    if video != (model == RAY32):
        raise InvalidRequest(f"model {model} does not make {kind} generations")
    return kind, model


def _check_combination(body: AgentsInput, kind: str, model: str) -> None:
    """The Agents API's rules across fields: 400 for a missing or wrong value, 422 for a combination."""
    video = body.video
    needs_source = kind in ("image_edit", "video_edit", "video_reframe")
    if needs_source and body.source is None:
        raise InvalidRequest(f"source is required for type {kind}")
    if not needs_source and body.source is not None:
        raise Unprocessable(f"source is not used by type {kind}")
    limit = IMAGE_REFS_MAX.get(kind, 0)
    if len(body.image_ref or []) > limit:
        raise InvalidRequest(f"image_ref takes at most {limit} references for type {kind}")
    if kind not in AGENTS_VIDEO_TYPES:
        if video is not None:
            raise Unprocessable(f"video options are not used by type {kind}")
        return
    if body.aspect_ratio is not None and body.aspect_ratio not in RAY32_ASPECT_RATIOS:
        raise InvalidRequest(f"aspect_ratio must be one of {', '.join(RAY32_ASPECT_RATIOS)} for {model}")
    if kind == "video_reframe" and body.aspect_ratio is None:
        raise InvalidRequest("aspect_ratio is required for video_reframe (the new frame's shape)")
    if video is None:
        return
    if video.loop and (kind != "video" or video.duration == "10s" or video.hdr):
        raise Unprocessable("video.loop is only for type video, and not with 10s or hdr")
    if video.hdr and (kind == "video_reframe" or video.resolution == "360p"):
        raise Unprocessable("video.hdr is not available for video_reframe or 360p drafts")
    if video.exr_export and not video.hdr:
        raise Unprocessable("video.exr_export needs video.hdr")
    if kind != "video" and (video.start_frame or video.end_frame or video.keyframes):
        raise Unprocessable("start_frame, end_frame and keyframes are only for type video")
    if kind != "video" and video.duration is not None:
        raise Unprocessable("an edit or reframe lasts as long as its source: leave video.duration out")
    if video.source_position is not None and kind != "video_reframe":
        raise Unprocessable("video.source_position is only for video_reframe")
    if video.edit is not None and kind != "video_edit":
        raise Unprocessable("video.edit is only for video_edit")
    if video.keyframes is not None or video.keyframe_indexes is not None:
        _check_keyframes(video.keyframes, video.keyframe_indexes, video.duration or "5s")
        if video.loop or video.start_frame or video.end_frame:
            raise Unprocessable("video.keyframes exclude start_frame, end_frame and loop")


def _check_keyframes(
    keyframes: tuple[ImageRef, ...] | None, indexes: tuple[int, ...] | None, duration: str
) -> None:
    if not keyframes or indexes is None or len(keyframes) != len(indexes):
        raise Unprocessable("video.keyframes and video.keyframe_indexes must be parallel lists of 1 to 64")
    last = (10 if duration == "10s" else 5) * 24
    if any(not 0 <= i <= last for i in indexes):
        raise Unprocessable(f"video.keyframe_indexes must be 0..{last} for {duration}")
    if len(set(indexes)) != len(indexes):
        raise Unprocessable("video.keyframe_indexes must be unique")


def _duration_of(seconds: float | None) -> str:
    """An edit or reframe is priced by its source's length: up to 5.5 s as 5 s, longer as 10 s."""
    return "5s" if seconds is not None and seconds <= 5.5 else "10s"


def _action(kind: str, parents: list[Task]) -> str:
    if kind == "video":
        return "extend" if parents else "generate"
    return kind


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
        url, seconds = await _store_video(rt, field, ref, refs.inputs)
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
    if parent is None or not parent.is_agents or parent.deleted_at is not None:
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


async def _store_video(rt: Collaborators, field: str, ref: ImageRef, inputs: TaskInputs) -> tuple[str, float]:
    """A video source given by URL (fetched through netguard) or base64: checked, stored as an input."""
    if ref.url is not None:
        data = await customer_urls.fetch(
            rt.guarded_session,
            rt.url_policy,
            field,
            ref.url,
            what="video",
            limit=MAX_SOURCE_VIDEO_BYTES,
            timeout_seconds=60,
        )
    else:
        text = "".join((ref.data or "").split())
        if len(text) // 4 * 3 > MAX_SOURCE_VIDEO_BYTES:
            raise PayloadTooLarge(f"{field}: the video is larger than {MAX_SOURCE_VIDEO_BYTES} bytes")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest(f"{field}: data is not valid base64") from exc
    seconds = await _video_seconds(field, data)
    key = inputs.next_key("mp4")
    try:
        await rt.storage.put_bytes(key, data)
    except StorageError as exc:
        raise StorageUnavailable(f"{field}: the video could not be stored; try again shortly") from exc
    return f"{rt.media_base_url}/{key}", seconds


async def _video_seconds(field: str, data: bytes) -> float:
    try:
        info = await anyio.to_thread.run_sync(probe.probe_video_bytes, data)
    except probe.MediaError as exc:
        raise InvalidRequest(f"{field}: the video cannot be decoded ({exc})") from exc
    if info.duration > MAX_EDIT_SOURCE_SECONDS:
        raise InvalidRequest(f"{field}: a source video may be at most {MAX_EDIT_SOURCE_SECONDS:.0f} s long")
    return info.duration


async def _stored_video_seconds(rt: Collaborators, url: str) -> float:
    key = url.removeprefix(f"{rt.media_base_url}/")
    info = await rt.storage.stat(key)
    if info is None:
        raise InvalidRequest("the file's bytes are gone")
    data = b"".join([chunk async for chunk in rt.storage.stream(key, 0, info.size)])
    return await _video_seconds("file", data)
