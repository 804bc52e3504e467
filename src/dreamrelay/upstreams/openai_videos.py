"""Any OpenAI Videos API server (`/v1/videos`: another DreamRelay, new-api, a commercial relay) as an
upstream: create (or extend), poll each id, and the finished video's `content`, fetched with the
channel's key (ChannelKind.media_key)."""

from __future__ import annotations

from dreamrelay.domain.catalog import VIDEO
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.domain.requests import SubmitRequest, VideoRequest
from dreamrelay.domain.states import TaskState
from dreamrelay.formats import videos as fmt
from dreamrelay.upstreams.base import ChannelKind, UpstreamRefused, UpstreamStatus
from dreamrelay.upstreams.http import BearerUpstream, created_id, json_field, probe_at, send_json

STATES = {
    "queued": TaskState.PENDING,
    "in_progress": TaskState.PROCESSING,
    "completed": TaskState.COMPLETED,
    "failed": TaskState.FAILED,
}


class OpenAIVideosUpstream(BearerUpstream):
    takes_callbacks = False

    async def submit(self, request: SubmitRequest) -> str:
        if not isinstance(request, VideoRequest) or request.end_upstream_id or request.end_image_url:
            raise UpstreamRefused("an OpenAI Videos server takes a first frame only, no last frame")
        seconds = fmt.seconds_of(request.duration)
        body: JsonObject
        if request.extend_upstream_id:
            path = "/v1/videos/extensions"
            body = {"prompt": request.prompt, "seconds": seconds, "video": {"id": request.extend_upstream_id}}
        else:
            path = "/v1/videos"
            body = {
                "prompt": request.prompt,
                "model": fmt.shown_model(request.model),
                "seconds": seconds,
                "size": fmt.size_of(request.aspect_ratio, request.resolution),
            }
            if request.start_image_url:
                body["input_reference"] = {"image_url": request.start_image_url}
        status, payload, headers = await self._post(self._base + path, body)
        return created_id(status, payload, headers, json_field(payload, "id"), created=(200,), who="videos")

    async def _get(self, upstream_id: str) -> UpstreamStatus | None:
        found = await self._read(f"{self._base}/v1/videos/{upstream_id}")
        if found is None:
            return None
        raw = str(found.get("status"))
        state = STATES.get(raw)
        if state is None:
            return None
        error = found.get("error")
        reason = error.get("message") if isinstance(error, dict) and state is TaskState.FAILED else None
        done = state is TaskState.COMPLETED
        return UpstreamStatus(
            state=state,
            video_url=f"{self._base}/v1/videos/{upstream_id}/content" if done else None,
            failure_reason=str(reason) if reason else None,
            raw_state=raw,
        )

    async def cancel(self, upstream_id: str) -> None:
        await send_json(
            self._session,
            "DELETE",
            f"{self._base}/v1/videos/{upstream_id}",
            None,
            self._headers,
            self._timeout,
        )


KIND = ChannelKind(
    name="openai-videos",
    adapters={VIDEO: OpenAIVideosUpstream.connect},
    probe=probe_at("/v1/videos?limit=1"),
    media_key=True,
)
