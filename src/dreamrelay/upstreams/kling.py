"""Kling's image API (POST/GET /v1/images/generations, envelope {code, message, request_id, data}).

Spoken by the built-in sandbox and by `kling` channels. `base_url` is the API root without /v1; the
channel's secret is sent as the Bearer token (for Kling itself, a token made from its access keys).
"""

from __future__ import annotations

from typing import Any

from dreamrelay.domain.catalog import IMAGE
from dreamrelay.domain.requests import ImagesRequest, SubmitRequest
from dreamrelay.domain.states import TaskState, parse_upstream_state
from dreamrelay.upstreams.base import (
    ChannelKind,
    UpstreamRefused,
    UpstreamStatus,
)
from dreamrelay.upstreams.http import BearerUpstream, created_id, json_field, probe_at

# Our catalog name → Kling's model_name.
KLING_MODELS = {"kling-image": "kling-v1"}


class KlingUpstream(BearerUpstream):
    takes_callbacks = False  # polled; Kling's callback body is not a Generation

    @property
    def _url(self) -> str:
        return self._base + "/v1/images/generations"

    async def submit(self, request: SubmitRequest) -> str:
        if not isinstance(request, ImagesRequest):
            raise UpstreamRefused("a Kling image channel makes no Luma videos")
        body: dict[str, Any] = {
            "model_name": KLING_MODELS.get(request.model, request.model),
            "prompt": request.prompt,
            "n": request.n,
            "aspect_ratio": request.aspect_ratio,
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if request.image_url:
            body["image"] = request.image_url
            if request.image_fidelity is not None:
                body["image_fidelity"] = request.image_fidelity
        status, payload, headers = await self._post(self._url, body)
        found = json_field(_data(payload), "task_id")
        return created_id(status, payload, headers, found, created=(200,), what="a task id")

    async def cancel(self, upstream_id: str) -> None:
        """Kling has no cancel: the task runs to its end upstream."""

    async def _get(self, upstream_id: str) -> UpstreamStatus | None:
        data = await self._read(f"{self._url}/{upstream_id}", _data)
        return None if data is None else parse_task(data)


def _data(payload: Any) -> Any:
    """The `data` of Kling's envelope."""
    return json_field(payload, "data")


def parse_task(data: dict[str, Any]) -> UpstreamStatus:
    raw_state = data.get("task_status")
    state = parse_upstream_state(raw_state) or TaskState.PENDING
    result = data.get("task_result")
    images = result.get("images") if isinstance(result, dict) else None
    urls = tuple(
        str(image["url"])
        for image in sorted(
            (i for i in images or [] if isinstance(i, dict) and isinstance(i.get("url"), str)),
            key=lambda i: i.get("index", 0) if isinstance(i.get("index"), int) else 0,
        )
    )
    reason = data.get("task_status_msg")
    return UpstreamStatus(
        state=state,
        image_urls=urls,
        failure_reason=str(reason) if reason else None,
        raw_state=str(raw_state),
    )


KIND = ChannelKind(
    name="kling",
    adapters={IMAGE: KlingUpstream.connect},
    probe=probe_at("/images/generations?pageNum=1&pageSize=1"),
)
