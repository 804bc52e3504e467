"""Kling's API: images (POST/GET /v1/images/generations) and videos (POST /v1/videos/text2video and
/v1/videos/image2video, GET …/{task_id}), every answer in the envelope {code, message, request_id, data}.

Spoken by the built-in sandbox and by `kling` channels. `base_url` is the API root without /v1. The
channel's secret is Kling's access key and secret key as `AK|SK`: each request carries a fresh JWT
signed with them (HS256, valid 30 minutes, as Kling's docs say); any other secret (another relay's key,
the sandbox's) is sent as the Bearer token as it is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import orjson

from dreamrelay.domain.catalog import (
    IMAGE,
    KLING_IMAGE2VIDEO,
    KLING_TEXT2VIDEO,
    KLING_VIDEO,
    KLING_VIDEO_MODELS,
)
from dreamrelay.domain.requests import ImagesRequest, KlingVideoRequest, SubmitRequest, used_price_key
from dreamrelay.domain.states import TaskState, parse_upstream_state
from dreamrelay.upstreams.base import (
    ChannelKind,
    UpstreamRefused,
    UpstreamStatus,
)
from dreamrelay.upstreams.http import BearerUpstream, created_id, json_field, probe_at

# Our catalog name → Kling's model_name.
KLING_MODELS = {"kling-image": "kling-v1"}
TOKEN_SECONDS = 1800  # a token's life (exp); nbf is 5 s back for clocks a little apart
KEY_SEPARATOR = "|"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_for(access_key: str, secret_key: str, now: float) -> str:
    """Kling's API token: a JWT (HS256) whose issuer is the access key, signed with the secret key."""
    header = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    claims = _b64(orjson.dumps({"iss": access_key, "exp": int(now) + TOKEN_SECONDS, "nbf": int(now) - 5}))
    signed = f"{header}.{claims}".encode()
    signature = hmac.new(secret_key.encode(), signed, hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(signature)}"


class _KlingAuth(BearerUpstream):
    def _bearer(self) -> str:
        access_key, separator, secret_key = self._api_key.partition(KEY_SEPARATOR)
        if not separator or not access_key or not secret_key:
            return self._api_key
        return jwt_for(access_key.strip(), secret_key.strip(), time.time())


class KlingUpstream(_KlingAuth):
    takes_callbacks = False  # polled: images are quick, and the image task's callback is not read

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


def video_body(request: KlingVideoRequest) -> dict[str, Any]:
    """Kling's text2video or image2video body (the images are URLs of ours)."""
    body: dict[str, Any] = {
        "model_name": request.model,
        "prompt": request.prompt,
        "mode": request.mode,
        "duration": str(request.duration),
    }
    if request.image_url:
        body["image"] = request.image_url
        if request.image_tail_url:
            body["image_tail"] = request.image_tail_url
    else:
        body["aspect_ratio"] = request.aspect_ratio  # image2video takes the image's
    if request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    spec = KLING_VIDEO_MODELS.get(request.model)
    if request.cfg_scale is not None and spec is not None and spec.takes_cfg_scale:
        body["cfg_scale"] = request.cfg_scale
    if request.camera_control is not None:
        body["camera_control"] = request.camera_control
    if request.callback_url:
        body["callback_url"] = request.callback_url
    return body


class KlingVideoUpstream(_KlingAuth):
    """Kling's video API. Upstream ids are kept as `<path word>/<task id>`: a task is read under the path
    it was made through (text2video or image2video)."""

    takes_callbacks = True  # Kling POSTs the task object to callback_url on each change

    async def submit(self, request: SubmitRequest) -> str:
        if not isinstance(request, KlingVideoRequest):
            raise UpstreamRefused("a Kling video channel makes only Kling videos")
        word = KLING_IMAGE2VIDEO if request.image_url else KLING_TEXT2VIDEO
        status, payload, headers = await self._post(f"{self._base}/v1/videos/{word}", video_body(request))
        found = json_field(_data(payload), "task_id")
        task_id = created_id(status, payload, headers, found, created=(200,), what="a task id")
        return f"{word}/{task_id}"

    async def cancel(self, upstream_id: str) -> None:
        """Kling has no cancel: the task runs to its end upstream."""

    async def _get(self, upstream_id: str) -> UpstreamStatus | None:
        word, _, task_id = upstream_id.rpartition("/")
        data = await self._read(f"{self._base}/v1/videos/{word or KLING_TEXT2VIDEO}/{task_id}", _data)
        return None if data is None else parse_task(data)


def _data(payload: Any) -> Any:
    """The `data` of Kling's envelope."""
    return json_field(payload, "data")


def parse_task(data: dict[str, Any]) -> UpstreamStatus:
    """A Kling task object (images or videos) as our status."""
    raw_state = data.get("task_status")
    state = parse_upstream_state(raw_state) or TaskState.PENDING
    result = data.get("task_result")
    images = result.get("images") if isinstance(result, dict) else None
    videos = result.get("videos") if isinstance(result, dict) else None
    urls = tuple(
        str(image["url"])
        for image in sorted(
            (i for i in images or [] if isinstance(i, dict) and isinstance(i.get("url"), str)),
            key=lambda i: i.get("index", 0) if isinstance(i.get("index"), int) else 0,
        )
    )
    video = next(
        (v["url"] for v in videos or [] if isinstance(v, dict) and isinstance(v.get("url"), str)), None
    )
    reason = data.get("task_status_msg")
    return UpstreamStatus(
        state=state,
        video_url=video,
        image_urls=urls,
        failure_reason=str(reason) if reason else None,
        raw_state=str(raw_state),
    )


def video_report(payload: Any, upstream_id: str) -> UpstreamStatus | None:
    """What Kling posts to a callback URL (the bare task object), if it describes `upstream_id` (ours:
    `<path word>/<task id>`)."""
    if not isinstance(payload, dict) or payload.get("task_id") != upstream_id.rpartition("/")[2]:
        return None
    return parse_task(payload)


KIND = ChannelKind(
    name="kling",
    adapters={IMAGE: KlingUpstream.connect, KLING_VIDEO: KlingVideoUpstream.connect},
    probe=probe_at("/images/generations?pageNum=1&pageSize=1"),
    price_keys=("n", "resolution", "duration"),
    reports={KLING_VIDEO: video_report},
    priced_by_use={KLING_VIDEO: used_price_key},
)
