"""Luma's Agents API (agents.lumalabs.ai/v1): Ray 3.2 video and Uni-1 images; also the sandbox's.

`base_url` is the API root including /v1. Generations are created with POST /generations (201) and
followed with GET /generations/{id}; there is no cancel and no callback. Output URLs are presigned
for an hour, so the follower copies them as soon as a generation completes.
"""

from __future__ import annotations

from typing import Any

from dreamrelay.domain.catalog import AGENTS, AGENTS_FAILURE_CODES
from dreamrelay.domain.states import TaskState
from dreamrelay.upstreams.base import (
    AgentsRequest,
    ChannelKind,
    SubmitRequest,
    UpstreamRefused,
    UpstreamRequest,
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
        if not isinstance(request, AgentsRequest | UpstreamRequest):
            raise UpstreamRefused("the Agents API makes no Kling images")
        body = dict(request.body) if isinstance(request, AgentsRequest) else agents_body(request)
        if request.user_id:
            body["user_id"] = request.user_id
        status, payload, headers = await self._post(self._base + "/generations", body)
        return created_id(status, payload, headers, json_field(payload, "id"))

    async def cancel(self, upstream_id: str) -> None:
        """The Agents API has no cancel: the generation runs to its end upstream."""

    async def _get(self, upstream_id: str) -> UpstreamStatus | None:
        payload = await self._read(f"{self._base}/generations/{upstream_id}")
        return None if payload is None else parse_generation(payload)


def agents_body(request: UpstreamRequest) -> dict[str, Any]:
    """An own- or official-format Ray 3.2 request → an Agents API `type: video` body."""
    video: dict[str, Any] = {"duration": request.duration, "resolution": request.resolution}
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


def parse_generation(payload: dict[str, Any]) -> UpstreamStatus:
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
    name="luma-agents", adapters={AGENTS: AgentsUpstream.connect}, probe=probe_at("/files?limit=1")
)
