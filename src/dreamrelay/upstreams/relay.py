"""Another own-format relay (a commercial Luma relay, or another DreamRelay): batch-polled via /luma/tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dreamrelay.domain.catalog import VIDEO
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.domain.requests import SubmitRequest, VideoRequest
from dreamrelay.domain.states import parse_upstream_state
from dreamrelay.upstreams.base import (
    ChannelKind,
    UpstreamRefused,
    UpstreamStatus,
)
from dreamrelay.upstreams.http import (
    BearerUpstream,
    classify,
    created_id,
    json_field,
    probe_at,
    send_json,
    unavailable,
)

BATCH_SIZE = 100


class RelayUpstream(BearerUpstream):
    batch_size = BATCH_SIZE
    takes_callbacks = False

    async def submit(self, request: SubmitRequest) -> str:
        if not isinstance(request, VideoRequest) or request.end_upstream_id:
            # Routing keeps image tasks away; the own format has no reverse extend or interpolation.
            raise UpstreamRefused("an own-format relay can only continue a video from its end")
        if request.extend_upstream_id:
            path = f"/luma/generations/{request.extend_upstream_id}/extend"
            body: JsonObject = {"user_prompt": request.prompt, "duration": request.duration}
        else:
            path = "/luma/generations"
            body = {
                "user_prompt": request.prompt,
                "model_name": request.model,
                "aspect_ratio": request.aspect_ratio,
                "resolution": request.resolution,
                "duration": request.duration,
            }
            if request.start_image_url:
                body["image_url"] = request.start_image_url
        if request.loop:
            body["loop"] = True
        if request.expand_prompt:
            body["expand_prompt"] = True
        if request.end_image_url:
            body["image_end_url"] = request.end_image_url
        status, payload, headers = await self._post(self._base + path, body)
        found = json_field(unwrap(payload), "id")
        return created_id(status, payload, headers, found, created=(200,), who="relay")

    async def poll(self, upstream_ids: Sequence[str]) -> dict[str, UpstreamStatus]:
        status, payload, headers = await send_json(
            self._session,
            "POST",
            self._base + "/luma/tasks",
            {"ids": list(upstream_ids)},
            self._headers,
            self._timeout,
            idempotent=True,
        )
        items = unwrap(payload)
        if status != 200 or not isinstance(items, list):
            raise unavailable(classify(status, payload, headers, who="relay"), "batch query failed: ")
        found: dict[str, UpstreamStatus] = {}
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                parsed = parse_task(item)
                if parsed is not None:
                    found[item["id"]] = parsed
        return found

    async def cancel(self, upstream_id: str) -> None:
        """The own format cannot cancel a task: the upstream task runs on (and is paid for there)."""


def unwrap(payload: Any) -> Any:
    """The bare answer, or the `data` of a new-api style envelope {"code", "message", "data"}."""
    if isinstance(payload, dict) and "data" in payload and ("code" in payload or "message" in payload):
        return payload["data"]
    return payload


def parse_task(item: JsonObject) -> UpstreamStatus | None:
    raw_state = item.get("state", item.get("status"))
    state = parse_upstream_state(raw_state)
    if state is None:
        return None
    return UpstreamStatus(
        state=state,
        video_url=_video_url(item),
        failure_reason=str(item.get("failure_reason") or item.get("fail_reason") or "") or None,
        raw_state=str(raw_state),
    )


def _video_url(item: JsonObject) -> str | None:
    artifact = item.get("artifact")
    if not isinstance(artifact, dict):
        artifact = {}
    for holder in (item.get("video"), item.get("video_raw"), artifact.get("video")):
        if isinstance(holder, dict):
            for key in ("download_url", "url"):
                if isinstance(holder.get(key), str):
                    return str(holder[key])
        elif isinstance(holder, str):
            return holder
    return None


KIND = ChannelKind(
    name="relay",
    adapters={VIDEO: RelayUpstream.connect},
    probe=probe_at("/luma/tasks", "POST", {"ids": []}),
)
