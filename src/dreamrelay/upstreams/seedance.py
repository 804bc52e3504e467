"""Seedance on Volcengine Ark: the content-generation tasks API (POST/GET/DELETE
{base}/contents/generations/tasks[/{id}]), `base_url` such as https://ark.cn-beijing.volces.com/api/v3,
the channel's secret as the Bearer API key. Spoken by `seedance` channels (Ark itself, or another
DreamRelay's /api/v3) and by the built-in sandbox (its /ark/api/v3).
"""

from __future__ import annotations

from typing import Any

from dreamrelay.domain.catalog import SEEDANCE
from dreamrelay.domain.requests import SeedanceRequest, SubmitRequest
from dreamrelay.domain.states import TaskState
from dreamrelay.upstreams.base import ChannelKind, UpstreamRefused, UpstreamStatus
from dreamrelay.upstreams.http import BearerUpstream, created_id, json_field, probe_at, send_json

# Ark's task statuses → ours. `cancelled` and `expired` end without a video: the task failed.
STATES = {
    "queued": TaskState.PENDING,
    "running": TaskState.PROCESSING,
    "succeeded": TaskState.COMPLETED,
    "failed": TaskState.FAILED,
    "cancelled": TaskState.FAILED,
    "expired": TaskState.FAILED,
}
# Why a task ended without its own error object.
_ENDINGS = {"cancelled": "the task was cancelled upstream", "expired": "the task expired upstream"}


def body_of(request: SeedanceRequest) -> dict[str, Any]:
    """Ark's create body: the prompt and images as `content[]`, the parameters as top-level fields."""
    content: list[dict[str, Any]] = []
    if request.prompt:
        content.append({"type": "text", "text": request.prompt})
    content += [
        {"type": "image_url", "image_url": {"url": image.url}, "role": image.role} for image in request.images
    ]
    body: dict[str, Any] = {
        "model": request.model,
        "content": content,
        "resolution": request.resolution,
        "ratio": request.ratio,
        "duration": request.duration,
        "fps": request.fps,
        "seed": request.seed,
        "camera_fixed": request.camera_fixed,
        "watermark": request.watermark,
        "return_last_frame": request.return_last_frame,
    }
    if request.callback_url:
        body["callback_url"] = request.callback_url
    return body


class SeedanceUpstream(BearerUpstream):
    # Ark POSTs the task object to callback_url on each change (read by `parse_task`, the kind's report).
    takes_callbacks = True

    @property
    def _url(self) -> str:
        return self._base + "/contents/generations/tasks"

    async def submit(self, request: SubmitRequest) -> str:
        if not isinstance(request, SeedanceRequest):
            raise UpstreamRefused("a Seedance channel makes only Seedance videos")
        status, payload, headers = await self._post(self._url, body_of(request))
        return created_id(
            status, payload, headers, json_field(payload, "id"), created=(200,), what="a task id"
        )

    async def cancel(self, upstream_id: str) -> None:
        """Ark's one verb: a queued task is cancelled, a finished one deleted (a running one refuses)."""
        await send_json(
            self._session,
            "DELETE",
            f"{self._url}/{upstream_id}",
            {},
            self._headers,
            self._timeout,
            idempotent=True,
        )

    async def _get(self, upstream_id: str) -> UpstreamStatus | None:
        task = await self._read(f"{self._url}/{upstream_id}")
        return None if task is None else parse_task(task)


def parse_task(task: dict[str, Any]) -> UpstreamStatus:
    """An Ark task object (a GET's answer, or what Ark posts to a callback URL) as our status."""
    raw = task.get("status")
    state = STATES.get(raw, TaskState.PROCESSING) if isinstance(raw, str) else TaskState.PENDING
    content = task.get("content")
    video = content.get("video_url") if isinstance(content, dict) else None
    error = task.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    usage = task.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return UpstreamStatus(
        state=state,
        video_url=video if isinstance(video, str) else None,
        failure_reason=(f"{code}: {message}" if code else message) or _ENDINGS.get(str(raw)),
        raw_state=str(raw),
        failure_code=str(code) if code else None,
        usage_tokens=tokens
        if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0
        else None,
    )


def task_report(payload: Any, upstream_id: str) -> UpstreamStatus | None:
    """What Ark posts to a callback URL (the task object), if it is `upstream_id`'s."""
    if not isinstance(payload, dict) or payload.get("id") != upstream_id:
        return None
    return parse_task(payload)


KIND = ChannelKind(
    name="seedance",
    adapters={SEEDANCE: SeedanceUpstream.connect},
    probe=probe_at("/contents/generations/tasks?page_num=1&page_size=1"),
    expiring_links=frozenset({SEEDANCE}),  # Ark's outputs are presigned TOS links (about 24 h)
    price_keys=("resolution", "duration"),
    reports={SEEDANCE: task_report},
)
