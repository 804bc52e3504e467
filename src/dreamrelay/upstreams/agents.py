"""Luma's Agents API (agents.lumalabs.ai/v1): Ray 3.2 video and Uni-1 images; also the sandbox's.

`base_url` is the API root including /v1. Generations are created with POST /generations (201) and
followed with GET /generations/{id}; there is no cancel and no callback. Output URLs are presigned
for an hour, so the follower copies them as soon as a generation completes.
"""

from __future__ import annotations

from dreamrelay.domain.catalog import AGENTS, AGENTS_FAILURE_CODES
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.domain.requests import AgentsRequest, SubmitRequest, UpstreamRef, VideoRequest
from dreamrelay.domain.states import TaskState
from dreamrelay.upstreams.base import (
    ChannelKind,
    UpstreamRefused,
    UpstreamStatus,
)
from dreamrelay.upstreams.http import BearerUpstream, created_id, json_field, probe_at

STATES = {
    "queued": TaskState.PENDING,
    "processing": TaskState.PROCESSING,
    "completed": TaskState.COMPLETED,
    "failed": TaskState.FAILED,
}


class AgentsUpstream(BearerUpstream):
    batch_size = 1  # no batch read: polls go out concurrently
    takes_callbacks = False

    async def submit(self, request: SubmitRequest) -> str:
        if not isinstance(request, AgentsRequest | VideoRequest):
            raise UpstreamRefused("the Agents API makes no Kling images")
        body = generation_body(request) if isinstance(request, AgentsRequest) else agents_body(request)
        if request.user_id:
            body["user_id"] = request.user_id
        status, payload, headers = await self._post(self._base + "/generations", body)
        return created_id(status, payload, headers, json_field(payload, "id"))

    async def cancel(self, upstream_id: str) -> None:
        """The Agents API has no cancel: the generation runs to its end upstream."""

    async def _get(self, upstream_id: str) -> UpstreamStatus | None:
        payload = await self._read(f"{self._base}/generations/{upstream_id}")
        return None if payload is None else parse_generation(payload)


def generation_body(request: AgentsRequest) -> JsonObject:
    """An Agents API request → its POST /generations body."""
    body: JsonObject = {"type": request.kind, "model": request.model, "prompt": request.prompt}
    if request.aspect_ratio:
        body["aspect_ratio"] = request.aspect_ratio
    if request.output_format:
        body["output_format"] = request.output_format
    if request.style:
        body["style"] = request.style
    if request.source is not None:
        body["source"] = request.source.wire()
    if request.image_ref:
        body["image_ref"] = _wire(request.image_ref)
    if request.video is not None:
        video = dict(request.video)
        if request.start_frame is not None:
            video["start_frame"] = request.start_frame.wire()
        if request.end_frame is not None:
            video["end_frame"] = request.end_frame.wire()
        if request.keyframes:
            video["keyframes"] = _wire(request.keyframes)
        if request.edit is not None:
            edit = dict(request.edit)
            if request.edit_keyframes:
                edit["keyframes"] = _wire(request.edit_keyframes)
            video["edit"] = edit
        if request.kind == "video":
            video.setdefault("duration", request.duration)
        body["video"] = video
    return body


def _wire(refs: tuple[UpstreamRef, ...]) -> list[JsonObject]:
    return [ref.wire() for ref in refs]


def agents_body(request: VideoRequest) -> JsonObject:
    """An own- or official-format Ray 3.2 request → an Agents API `type: video` body."""
    video: JsonObject = {"duration": request.duration, "resolution": request.resolution}
    if request.loop:
        video["loop"] = True
    if request.extend_upstream_id:
        video["start_frame"] = {"generation_id": request.extend_upstream_id}
    elif request.start_image_url:
        video["start_frame"] = {"url": request.start_image_url}
    if request.end_upstream_id:
        video["end_frame"] = {"generation_id": request.end_upstream_id}
    elif request.end_image_url:
        video["end_frame"] = {"url": request.end_image_url}
    return {
        "type": "video",
        "model": request.model,
        "prompt": request.prompt,
        "aspect_ratio": request.aspect_ratio,
        "video": video,
    }


def parse_generation(payload: JsonObject) -> UpstreamStatus:
    raw_state = payload.get("state")
    state = STATES.get(str(raw_state), TaskState.PENDING)
    outputs = [
        o for o in payload.get("output") or [] if isinstance(o, dict) and isinstance(o.get("url"), str)
    ]
    videos = [o["url"] for o in outputs if o.get("type") == "video"]
    images = tuple(o["url"] for o in outputs if o.get("type") == "image")
    code = payload.get("failure_code")
    reason = payload.get("failure_reason")
    return UpstreamStatus(
        state=state,
        video_url=videos[0] if videos else None,
        image_urls=images,
        failure_reason=str(reason)[:500] if reason else None,
        raw_state=str(raw_state),
        failure_code=code
        if code in AGENTS_FAILURE_CODES
        else ("generation_failed" if state is TaskState.FAILED else None),
    )


# The Agents API has no ping: the probe lists one file.
KIND = ChannelKind(
    name="luma-agents",
    adapters={AGENTS: AgentsUpstream.connect},
    probe=probe_at("/files?limit=1"),
    expiring_links=frozenset({AGENTS}),  # presigned output URLs
    price_keys=("resolution", "duration", "hdr"),
)
