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
    Endpoint,
    Probe,
    UpstreamOutcomeUnknown,
    UpstreamRefused,
    UpstreamStatus,
    UpstreamUnavailable,
)
from dreamrelay.upstreams.http import BearerUpstream, classify, detail, send_json

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
        status, payload, headers = await send_json(
            self._session, "POST", self._url, body, self._headers, self._timeout
        )
        data = payload.get("data") if isinstance(payload, dict) else None
        if status == 200 and isinstance(data, dict) and isinstance(data.get("task_id"), str):
            return str(data["task_id"])
        if 200 <= status < 300:
            raise UpstreamOutcomeUnknown(f"upstream answered {status} without a task id: {detail(payload)}")
        raise classify(status, payload, headers)

    async def cancel(self, upstream_id: str) -> None:
        """Kling has no cancel: the task runs to its end upstream."""

    async def _get(self, upstream_id: str) -> UpstreamStatus | None:
        status, payload, headers = await send_json(
            self._session, "GET", f"{self._url}/{upstream_id}", None, self._headers, self._timeout
        )
        if status == 404:
            return None
        data = payload.get("data") if isinstance(payload, dict) else None
        if status != 200 or not isinstance(data, dict):
            error = classify(status, payload, headers)
            raise error if isinstance(error, UpstreamUnavailable) else UpstreamUnavailable(str(error))
        return parse_task(data)


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


def _probe(endpoint: Endpoint) -> Probe:
    return Probe("GET", endpoint.base_url.rstrip("/") + "/images/generations?pageNum=1&pageSize=1")


KIND = ChannelKind(name="kling", adapters={IMAGE: KlingUpstream.connect}, probe=_probe)
