"""What the sandbox's Agents API accepts: a generation request checked as Luma's API checks it (400 for a
wrong value, 422 for a combination it refuses) and kept as a plain dict."""

from __future__ import annotations

from typing import Any

from dreamrelay.domain.catalog import (
    AGENTS_TYPES,
    AGENTS_VIDEO_TYPES,
    RAY32,
    RAY32_ASPECT_RATIOS,
    RAY32_RESOLUTIONS,
    UNI_ASPECT_RATIOS,
    UNI_MODELS,
)
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.sandbox.render import EDIT_WEIGHTS, RAY32_SECONDS, ray32_frames

VIDEO_DURATIONS = tuple(RAY32_SECONDS)


class AgentsError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def validate(body: Any) -> JsonObject:
    """The request as the sandbox keeps it; 400 for a wrong value, 422 for a combination it refuses."""
    if not isinstance(body, dict):
        raise AgentsError(400, "request body must be a JSON object")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise AgentsError(400, "prompt is required")
    kind = body.get("type") or ("video" if body.get("model") == RAY32 else "image")
    if kind not in AGENTS_TYPES:
        raise AgentsError(400, f"type must be one of {', '.join(AGENTS_TYPES)}")
    video = kind in AGENTS_VIDEO_TYPES
    model = body.get("model") or (RAY32 if video else "uni-1")
    if model not in ((RAY32,) if video else UNI_MODELS):
        raise AgentsError(400, f"model {model!r} does not make {kind} generations")
    ratios = RAY32_ASPECT_RATIOS if video else UNI_ASPECT_RATIOS
    aspect_ratio = body.get("aspect_ratio")
    if aspect_ratio is not None and aspect_ratio not in ratios:
        raise AgentsError(400, f"aspect_ratio must be one of {', '.join(ratios)} for {kind}")
    request: JsonObject = {
        "prompt": prompt,
        "type": kind,
        "model": model,
        "aspect_ratio": aspect_ratio or ("16:9" if video else "1:1"),
        "aspect_ratio_given": aspect_ratio is not None,
        "user_id": body.get("user_id") if isinstance(body.get("user_id"), str) else None,
    }
    source = body.get("source")
    if kind in ("image_edit", "video_edit", "video_reframe"):
        if source is None:
            raise AgentsError(400, f"source is required for {kind}")
        request["source"] = _ref(source, "source", video=kind != "image_edit")
    elif source is not None:
        raise AgentsError(422, f"source is not used by {kind}")
    refs = body.get("image_ref") or []
    limit = 9 if kind == "image" else 8 if kind == "image_edit" else 0
    if not isinstance(refs, list) or len(refs) > limit:
        raise AgentsError(400, f"image_ref takes at most {limit} references for {kind}")
    request["image_ref"] = [_ref(ref, f"image_ref[{i}]", video=False) for i, ref in enumerate(refs)]
    output_format = body.get("output_format")
    if output_format is not None and output_format not in ("png", "jpeg"):
        raise AgentsError(400, "output_format must be png or jpeg")
    request["output_format"] = output_format
    options = body.get("video")
    if options is not None and not video:
        raise AgentsError(422, f"video options are not used by {kind}")
    if video:
        request["video"] = _video_options(options or {}, kind)
    return request


def _video_options(options: Any, kind: str) -> JsonObject:
    if not isinstance(options, dict):
        raise AgentsError(400, "video must be an object")
    duration = options.get("duration") or "5s"
    resolution = options.get("resolution") or "720p"
    if duration not in VIDEO_DURATIONS:
        raise AgentsError(400, f"video.duration must be one of {', '.join(VIDEO_DURATIONS)}")
    if resolution not in RAY32_RESOLUTIONS:
        raise AgentsError(400, f"video.resolution must be one of {', '.join(RAY32_RESOLUTIONS)}")
    loop, hdr = bool(options.get("loop")), bool(options.get("hdr"))
    if loop and (kind != "video" or duration == "10s" or hdr):
        raise AgentsError(422, "video.loop is only for type video, and not with 10s or hdr")
    if hdr and (kind == "video_reframe" or resolution == "360p"):
        raise AgentsError(422, "video.hdr is not available for video_reframe or 360p drafts")
    if options.get("exr_export") and not hdr:
        raise AgentsError(422, "video.exr_export needs video.hdr")
    result: JsonObject = {"duration": duration, "resolution": resolution, "loop": loop, "hdr": hdr}
    for frame in ("start_frame", "end_frame"):
        if options.get(frame) is not None:
            if kind != "video":
                raise AgentsError(422, f"video.{frame} is only for type video")
            result[frame] = _ref(options[frame], f"video.{frame}", video=False)
    keyframes, indexes = options.get("keyframes"), options.get("keyframe_indexes")
    if keyframes is not None or indexes is not None:
        if kind != "video" or loop or "start_frame" in result or "end_frame" in result:
            raise AgentsError(
                422, "video.keyframes exclude start_frame, end_frame and loop (type video only)"
            )
        last = ray32_frames(duration) - 1
        if not isinstance(keyframes, list) or not isinstance(indexes, list) or not 1 <= len(keyframes) <= 64:
            raise AgentsError(400, "video.keyframes and video.keyframe_indexes must be lists of 1 to 64")
        if len(keyframes) != len(indexes):
            raise AgentsError(422, "video.keyframes and video.keyframe_indexes must have the same length")
        if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= last for i in indexes):
            raise AgentsError(422, f"video.keyframe_indexes must be 0..{last} for {duration}")
        if len(set(indexes)) != len(indexes):
            raise AgentsError(422, "video.keyframe_indexes must be unique")
        result["keyframes"] = [
            _ref(ref, f"video.keyframes[{i}]", video=False) for i, ref in enumerate(keyframes)
        ]
        result["keyframe_indexes"] = indexes
    position = options.get("source_position")
    if position is not None:
        if kind != "video_reframe":
            raise AgentsError(422, "video.source_position is only for video_reframe")
        result["source_position"] = _position(position)
    edit = options.get("edit")
    if edit is not None:
        if kind != "video_edit" or not isinstance(edit, dict):
            raise AgentsError(422, "video.edit is only for video_edit")
        strength = edit.get("strength")
        if strength is not None and strength not in EDIT_WEIGHTS:
            raise AgentsError(400, f"video.edit.strength must be one of {', '.join(EDIT_WEIGHTS)}")
        result["edit"] = {"strength": strength}
    return result


def _position(value: Any) -> dict[str, float]:
    fields = ("x_norm", "y_norm", "w_norm", "h_norm")
    if not isinstance(value, dict) or not all(isinstance(value.get(f), int | float) for f in fields):
        raise AgentsError(400, "video.source_position needs numbers x_norm, y_norm, w_norm, h_norm")
    position = {f: float(value[f]) for f in fields}
    if not (0 < position["w_norm"] <= 2 and 0 < position["h_norm"] <= 2):
        raise AgentsError(400, "video.source_position w_norm and h_norm must be in (0, 2]")
    if not (-2 <= position["x_norm"] <= 2 and -2 <= position["y_norm"] <= 2):
        raise AgentsError(400, "video.source_position x_norm and y_norm must be in [-2, 2]")
    return position


def _ref(value: Any, field: str, *, video: bool) -> JsonObject:
    keys = ("url", "data", "generation_id", "file_id")
    if not isinstance(value, dict):
        raise AgentsError(400, f"{field} must be an object")
    given = [k for k in keys if value.get(k) is not None]
    if len(given) != 1 or not isinstance(value[given[0]], str):
        raise AgentsError(400, f"{field}: give exactly one of {', '.join(keys)}")
    media_type = value.get("media_type")
    if given[0] == "data" and not media_type:
        raise AgentsError(400, f"{field}: media_type is required with data")
    if given[0] == "url" and video and not (isinstance(media_type, str) and media_type.startswith("video/")):
        raise AgentsError(400, f"{field}: a video source URL needs media_type video/*")
    if given[0] == "file_id":
        raise AgentsError(404, f"{field}: file {value['file_id'][:64]} not found")
    return {given[0]: value[given[0]], "media_type": media_type}
