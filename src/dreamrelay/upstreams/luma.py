"""The official Luma Dream Machine API (api.lumalabs.ai), also spoken by the built-in sandbox."""

from __future__ import annotations

from typing import Any

from dreamrelay.domain.catalog import (
    ADD_AUDIO,
    DREAM_MACHINE,
    GENERATE_IMAGE,
    MODELS,
    MODIFY_VIDEO,
    REFRAME_IMAGE,
    REFRAME_VIDEO,
    UPSCALE_VIDEO,
    VIDEO,
)
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.domain.requests import DreamMachineRequest, SubmitRequest, VideoRequest
from dreamrelay.domain.states import TaskState, parse_upstream_state
from dreamrelay.upstreams.base import (
    ChannelKind,
    UpstreamRefused,
    UpstreamStatus,
)
from dreamrelay.upstreams.http import BearerUpstream, classify, created_id, json_field, probe_at, send_json


class LumaUpstream(BearerUpstream):
    batch_size = 1  # the official API has no batch read; polls go out concurrently instead
    takes_callbacks = True

    async def submit(self, request: SubmitRequest) -> str:
        if not isinstance(request, DreamMachineRequest | VideoRequest):
            raise UpstreamRefused("the Dream Machine API has no Kling image generation")
        if isinstance(request, DreamMachineRequest):
            path, body = dream_machine_call(request)
            status, payload, headers = await self._post(self._base + path, body)
        else:
            body = official_request(request)
            # Current create path first; older deployments only know /generations.
            status, payload, headers = await self._post(self._base + "/generations/video", body)
            if status == 404:
                status, payload, headers = await self._post(self._base + "/generations", body)
        return created_id(status, payload, headers, json_field(payload, "id"))

    async def cancel(self, upstream_id: str) -> None:
        status, payload, headers = await send_json(
            self._session,
            "DELETE",
            f"{self._base}/generations/{upstream_id}",
            None,
            self._headers,
            self._timeout,
            idempotent=True,
        )
        if status not in (200, 204, 404):
            raise classify(status, payload, headers)

    async def _get(self, upstream_id: str) -> UpstreamStatus | None:
        payload = await self._read(f"{self._base}/generations/{upstream_id}")
        return None if payload is None else parse_generation(payload)


# Where each of the other Dream Machine generations is created (lumaai SDK paths).
_PATHS = {
    GENERATE_IMAGE: "/generations/image",
    REFRAME_IMAGE: "/generations/image/reframe",
    REFRAME_VIDEO: "/generations/video/reframe",
    MODIFY_VIDEO: "/generations/video/modify",
    UPSCALE_VIDEO: "/generations/{id}/upscale",
    ADD_AUDIO: "/generations/{id}/audio",
}


def dream_machine_call(request: DreamMachineRequest) -> tuple[str, JsonObject]:
    """(path, body) of a Dream Machine request other than a video generation."""
    path = _PATHS[request.action].replace("{id}", request.parent_upstream_id or "")
    body = _dream_machine_body(request)
    if request.callback_url:
        body["callback_url"] = request.callback_url
    return path, body


def _dream_machine_body(request: DreamMachineRequest) -> JsonObject:
    action = request.action
    if action == UPSCALE_VIDEO:
        return {"generation_type": action, "resolution": request.resolution}
    if action == ADD_AUDIO:
        return {
            "generation_type": action,
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
        }
    if action == GENERATE_IMAGE:
        head = {"generation_type": "image", "model": request.model}
        return {
            **head,
            "prompt": request.prompt,
            "aspect_ratio": request.aspect_ratio,
            **request.photon_refs(),
        }
    body: JsonObject = {
        "generation_type": action,
        "model": request.model,
        "prompt": request.prompt,
        "aspect_ratio": request.aspect_ratio,
    }
    if action == MODIFY_VIDEO:
        body["mode"] = request.mode
    body["media"] = {"url": request.media_url}
    if action == REFRAME_IMAGE and request.format is not None:
        body["format"] = request.format
    if request.first_frame_url:
        body["first_frame"] = {"url": request.first_frame_url}
    body.update(request.position)
    return body


def official_request(request: VideoRequest) -> JsonObject:
    """Own-format request → official GenerationRequest (luma-api.md §6.2)."""
    spec = MODELS[request.model]
    body: JsonObject = {
        "generation_type": "video",
        "model": spec.official,
        "prompt": request.prompt,
        "aspect_ratio": request.aspect_ratio,
        "loop": request.loop,
    }
    if spec.takes_resolution:
        body["resolution"] = request.resolution
        body["duration"] = request.duration
    keyframes: JsonObject = {}
    if request.extend_upstream_id:
        keyframes["frame0"] = {"type": "generation", "id": request.extend_upstream_id}
    elif request.start_image_url:
        keyframes["frame0"] = {"type": "image", "url": request.start_image_url}
    if request.end_upstream_id:
        keyframes["frame1"] = {"type": "generation", "id": request.end_upstream_id}
    elif request.end_image_url:
        keyframes["frame1"] = {"type": "image", "url": request.end_image_url}
    if keyframes:
        body["keyframes"] = keyframes
    if request.callback_url:
        body["callback_url"] = request.callback_url
    return body


def parse_generation(payload: JsonObject) -> UpstreamStatus:
    raw_state = payload.get("state")
    state = parse_upstream_state(raw_state) or TaskState.PENDING
    assets = payload.get("assets") or {}
    video = assets.get("video") if isinstance(assets, dict) else None
    image = assets.get("image") if isinstance(assets, dict) else None
    reason = payload.get("failure_reason")
    # An image generation's result is its picture (a video's `image` is only its thumbnail).
    pictures = (image,) if payload.get("generation_type") == "image" and isinstance(image, str) else ()
    return UpstreamStatus(
        state=state,
        video_url=video if isinstance(video, str) else None,
        image_urls=pictures,
        failure_reason=str(reason) if reason else None,
        raw_state=str(raw_state),
    )


def generation_report(payload: Any, upstream_id: str) -> UpstreamStatus | None:
    """What the Dream Machine API posts to a callback URL (the Generation), if it is `upstream_id`'s."""
    if not isinstance(payload, dict) or payload.get("id") != upstream_id:
        return None
    return parse_generation(payload)


KIND = ChannelKind(
    name="luma",
    adapters={VIDEO: LumaUpstream.connect, DREAM_MACHINE: LumaUpstream.connect},
    reports={VIDEO: generation_report, DREAM_MACHINE: generation_report},
    probe=probe_at("/ping"),
)
