"""The official Luma Dream Machine API (api.lumalabs.ai), also spoken by the built-in sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson

from dreamrelay.domain.catalog import MODELS
from dreamrelay.domain.states import TaskState, parse_upstream_state
from dreamrelay.upstreams.base import (
    UpstreamOutcomeUnknown,
    UpstreamRefused,
    UpstreamRequest,
    UpstreamStatus,
    UpstreamUnavailable,
)


class LumaUpstream:
    batch_size = 1

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, api_key: str, *, timeout_seconds: float = 30
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def submit(self, request: UpstreamRequest) -> str:
        body = orjson.dumps(official_request(request))
        headers = {**self._headers, "Content-Type": "application/json"}
        # Current create path first; older deployments only know /generations.
        for path in ("/generations/video", "/generations"):
            status, payload = await self._send("POST", path, body, headers)
            if status == 404 and path == "/generations/video":
                continue
            break
        if status in (200, 201) and isinstance(payload, dict) and isinstance(payload.get("id"), str):
            return payload["id"]
        message = f"upstream answered {status}: {_detail(payload)}"
        if status in (400, 422):
            raise UpstreamRefused(message)
        raise UpstreamUnavailable(message)

    async def poll(self, upstream_ids: Sequence[str]) -> dict[str, UpstreamStatus]:
        results = await asyncio.gather(*(self._get(i) for i in upstream_ids))
        return {i: s for i, s in zip(upstream_ids, results, strict=True) if s is not None}

    async def _get(self, upstream_id: str) -> UpstreamStatus | None:
        try:
            status, payload = await self._send("GET", f"/generations/{upstream_id}", None, self._headers)
        except UpstreamOutcomeUnknown as exc:
            raise UpstreamUnavailable(str(exc)) from exc
        if status == 404:
            return None
        if status != 200 or not isinstance(payload, dict):
            raise UpstreamUnavailable(f"poll answered {status}: {_detail(payload)}")
        return parse_generation(payload)

    async def _send(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, Any]:
        try:
            async with self._session.request(
                method, self._base + path, data=body, headers=headers, timeout=self._timeout
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as exc:
            if method == "GET" or isinstance(exc, aiohttp.ClientConnectorError):
                raise UpstreamUnavailable(f"cannot reach upstream: {exc}") from exc
            raise UpstreamOutcomeUnknown(f"upstream dropped the connection: {exc}") from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamOutcomeUnknown(f"no answer from upstream: {exc!r}") from exc
        try:
            payload = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            payload = raw[:200].decode(errors="replace")
        return status, payload


def official_request(request: UpstreamRequest) -> dict[str, Any]:
    """Own-format request → official GenerationRequest (luma-api.md §6.2)."""
    spec = MODELS[request.model]
    body: dict[str, Any] = {
        "generation_type": "video",
        "model": spec.official,
        "prompt": request.prompt,
        "aspect_ratio": request.aspect_ratio,
        "loop": request.loop,
    }
    if spec.takes_resolution:
        body["resolution"] = request.resolution
        body["duration"] = request.duration
    keyframes: dict[str, Any] = {}
    if request.extend_upstream_id:
        keyframes["frame0"] = {"type": "generation", "id": request.extend_upstream_id}
    elif request.start_image_url:
        keyframes["frame0"] = {"type": "image", "url": request.start_image_url}
    if request.end_image_url:
        keyframes["frame1"] = {"type": "image", "url": request.end_image_url}
    if keyframes:
        body["keyframes"] = keyframes
    return body


def parse_generation(payload: dict[str, Any]) -> UpstreamStatus:
    raw_state = payload.get("state")
    state = parse_upstream_state(raw_state) or TaskState.PENDING
    assets = payload.get("assets") or {}
    video = assets.get("video") if isinstance(assets, dict) else None
    reason = payload.get("failure_reason")
    return UpstreamStatus(
        state=state,
        video_url=video if isinstance(video, str) else None,
        failure_reason=str(reason) if reason else None,
        raw_state=str(raw_state),
    )


def _detail(payload: Any) -> str:
    if isinstance(payload, dict) and "detail" in payload:
        return str(payload["detail"])[:300]
    return str(payload)[:300]
