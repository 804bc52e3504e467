"""The Agents API's own rules for a generation request (/agents/v1), pure: which type and model it is,
which fields go together (400 for a missing or wrong value, 422 for a combination), what prices it before
its sources are known, and which of its video options are sent as given. `services/agents.py` applies them.
"""

from __future__ import annotations

from dreamrelay.domain.catalog import (
    AGENTS_VIDEO_TYPES,
    IMAGE_REFS_MAX,
    RAY32,
    RAY32_ASPECT_RATIOS,
    UNI_MODELS,
)
from dreamrelay.domain.errors import InvalidRequest, Unprocessable
from dreamrelay.domain.inputs import AgentsEdit, AgentsInput, AgentsVideo, ImageRef
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.domain.requests import PriceKey


def provisional_price_key(given: AgentsInput, kind: str) -> PriceKey:
    """What prices the request before its sources are known."""
    if kind not in AGENTS_VIDEO_TYPES:
        return PriceKey()
    video = given.video
    return PriceKey(
        resolution=(video.resolution if video else None) or "720p",
        duration=(video.duration if video else None) or "5s",
        hdr=bool(video and video.hdr),
    )


def video_options(video: AgentsVideo | None) -> JsonObject:
    """The video options given that are sent as they are (references and edit apart)."""
    if video is None:
        return {}
    given: JsonObject = {
        "duration": video.duration,
        "resolution": video.resolution,
        "loop": video.loop,
        "hdr": video.hdr,
        "exr_export": video.exr_export,
        "keyframe_indexes": None if video.keyframe_indexes is None else list(video.keyframe_indexes),
        "source_position": video.source_position,
    }
    return {name: value for name, value in given.items() if value is not None}


def edit_settings(edit: AgentsEdit) -> JsonObject:
    given: JsonObject = {
        "strength": edit.strength,
        "auto_controls": edit.auto_controls,
        "controls": edit.controls,
        "keyframe_indexes": None if edit.keyframe_indexes is None else list(edit.keyframe_indexes),
    }
    return {name: value for name, value in given.items() if value is not None}


def kind_and_model(body: AgentsInput) -> tuple[str, str]:
    kind = body.type or ("video" if body.model == RAY32 else "image")
    if kind == "layering":
        raise InvalidRequest("type layering is not offered by this relay")
    video = kind in AGENTS_VIDEO_TYPES
    model = body.model or (RAY32 if video else UNI_MODELS[0])
    if video != (model == RAY32):
        raise InvalidRequest(f"model {model} does not make {kind} generations")
    return kind, model


def check_combination(body: AgentsInput, kind: str, model: str) -> None:
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


def priced_duration(seconds: float | None) -> str:
    """An edit or reframe is priced by its source's length: up to 5.5 s as 5 s, longer as 10 s."""
    return "5s" if seconds is not None and seconds <= 5.5 else "10s"


def action(kind: str, *, extends: bool) -> str:
    """The price list's action: a video chained from a prior generation is an extend."""
    if kind == "video":
        return "extend" if extends else "generate"
    return kind
