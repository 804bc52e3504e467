"""The sandbox's OpenAI Videos API (`/v1/videos`), so an `openai-videos` channel runs without leaving the
machine: create (JSON or multipart), extensions, retrieve, list, delete and the content, over the official
API's generations (generations.py: the same rendering, timings and prompt markers). Errors are OpenAI's
envelope. Remix, edits and characters are not served (404).

Sizes are this sandbox's own reading of "WxH" (the short side's lines and the reduced ratio), written apart
from the relay's on purpose: a stand-in that shared the relay's mapping could not catch its mistakes.
"""

from __future__ import annotations

import math
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from dreamrelay.domain.ids import ascii_int
from dreamrelay.sandbox.auth import WRONG_KEY
from dreamrelay.sandbox.core import GenerationRecord, SandboxError
from dreamrelay.sandbox.generations import Sandbox

API = "openai-videos"  # the mark on the generations made through this API
LINES = {540: "540p", 720: "720p", 1080: "1080p", 2160: "4k"}
RATIOS = {(7, 3): "21:9", (3, 7): "9:21"}  # the official API's names of ratios not in lowest terms
STATUSES = {"queued": "queued", "dreaming": "in_progress", "completed": "completed", "failed": "failed"}
FIELDS = ("prompt", "model", "seconds", "size", "input_reference[image_url]", "video[id]", "callback_url")
PAGE_MAX = 100
# The official API's fields its errors name → the field of this API they came from.
_PARAMS = {"model": "model", "duration": "seconds", "aspect_ratio": "size", "resolution": "size"}


class VideosError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str = "invalid_value"):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def _size(size: str) -> tuple[str, str]:
    width, _x, height = size.lower().partition("x")
    w, h = ascii_int(width, max_digits=5), ascii_int(height, max_digits=5)
    if not w or not h or min(w, h) not in LINES:
        raise VideosError(400, "size must be WxH with a short side of 540, 720, 1080 or 2160", "size")
    divisor = math.gcd(w, h)
    wide, high = w // divisor, h // divisor
    return RATIOS.get((wide, high), f"{wide}:{high}"), LINES[min(w, h)]


def _shown_size(aspect_ratio: str, resolution: str) -> str:
    wide, high = (int(n) for n in aspect_ratio.split(":"))
    lines = next(n for n, name in LINES.items() if name == resolution)
    return f"{lines * wide // high}x{lines}" if wide >= high else f"{lines}x{lines * high // wide}"


async def _fields(request: Request) -> dict[str, str]:
    """A JSON or multipart body as text fields, nested objects as `name[key]` (as the SDKs send them)."""
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=len(FIELDS) + 4)
        if any(not isinstance(value, str) for value in form.values()):
            raise VideosError(400, "file parts are not taken by the sandbox; send input_reference[image_url]")
        fields = {name: str(value) for name, value in form.items()}
    else:
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise VideosError(400, "the body is not valid JSON") from exc
        if not isinstance(data, dict):
            raise VideosError(400, "the body must be a JSON object")
        fields = {}
        for name, value in data.items():
            for key, item in value.items() if isinstance(value, dict) else ((None, value),):
                if not isinstance(item, str | int) or isinstance(item, bool):
                    raise VideosError(400, f"{name[:64]} must be a string", name[:64])
                fields[f"{name}[{key}]" if key is not None else name] = str(item)
    unknown = [name for name in fields if name not in FIELDS]
    if unknown:
        raise VideosError(400, f"{unknown[0][:64]}: unknown field", unknown[0][:64].split("[")[0])
    if not fields.get("prompt"):
        raise VideosError(400, "prompt is required", "prompt")
    return fields


class VideosSandbox:
    """Videos are the official API's generations marked as made here (kept as files, so a restart keeps
    them)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def create(self, fields: dict[str, str], base_url: str) -> dict[str, Any]:
        body: dict[str, Any] = {"prompt": fields["prompt"], "model": fields.get("model") or "ray-2"}
        if "seconds" in fields:
            body["duration"] = f"{fields['seconds']}s"
        if "size" in fields:
            body["aspect_ratio"], body["resolution"] = _size(fields["size"])
        if "input_reference[image_url]" in fields:
            body["keyframes"] = {"frame0": {"type": "image", "url": fields["input_reference[image_url]"]}}
        return await self._made(body, base_url)

    async def extend(self, fields: dict[str, str], base_url: str) -> dict[str, Any]:
        parent = self.get(fields.get("video[id]", ""), "video")
        if parent.state != "completed":
            raise VideosError(400, "only a completed video can be extended", "video", "video_not_ready")
        given = parent.request
        body = {
            "prompt": fields["prompt"],
            "model": parent.model,
            "aspect_ratio": given["aspect_ratio"],
            "resolution": given["resolution"],
            "duration": f"{fields.get('seconds', '5')}s",
            "keyframes": {"frame0": {"type": "generation", "id": parent.id}},
        }
        return await self._made(body, base_url)

    async def _made(self, body: dict[str, Any], base_url: str) -> dict[str, Any]:
        try:
            record = await self.sandbox.create(body, base_url, "video", api=API)
        except SandboxError as exc:
            param = next((p for field, p in _PARAMS.items() if field in exc.detail), None)
            raise VideosError(exc.status, exc.detail, param) from exc
        return self.video(record)

    def get(self, video_id: str, param: str = "video_id") -> GenerationRecord:
        record = self.sandbox.records.get(video_id)
        if record is None or record.api != API:
            raise VideosError(404, f"video {video_id[:64]} not found", param, "not_found")
        return record

    def page(self, after: str | None, limit: int, ascending: bool) -> dict[str, Any]:
        records = sorted(
            (r for r in self.sandbox.records.values() if r.api == API),
            key=lambda r: (r.created_at, r.id),
            reverse=not ascending,
        )
        if after is not None:
            ids = [r.id for r in records]
            self.get(after, "after")
            records = records[ids.index(after) + 1 :]
        shown = [self.video(r) for r in records[:limit]]
        return {
            "object": "list",
            "data": shown,
            "first_id": shown[0]["id"] if shown else None,
            "last_id": shown[-1]["id"] if shown else None,
            "has_more": len(records) > limit,
        }

    def video(self, record: GenerationRecord) -> dict[str, Any]:
        config = self.sandbox.config
        request = record.request
        status = STATUSES[record.state]
        takes = config.queued_seconds + config.dreaming_seconds
        done = int(record.created_at + takes) if status in ("completed", "failed") else None
        elapsed = time.time() - record.created_at
        progress = 100 if status == "completed" else min(99, int(100 * elapsed / max(takes, 0.001)))
        failed = status == "failed"
        return {
            "id": record.id,
            "object": "video",
            "model": record.model,
            "status": status,
            "progress": 0 if failed else progress,
            "created_at": int(record.created_at),
            "completed_at": done,
            "expires_at": None,
            "prompt": request.get("prompt"),
            "seconds": request["duration"].removesuffix("s"),
            "size": _shown_size(request["aspect_ratio"], request["resolution"]),
            "remixed_from_video_id": None,
            "error": {"code": "generation_failed", "message": record.failure_reason} if failed else None,
        }


def videos_router(videos: VideosSandbox, api_key: str, base_url: Any) -> APIRouter:
    """The routes under /v1/videos; `base_url(request)` is the official API's base (for keyframe files)."""
    router = APIRouter()

    def authorise(request: Request) -> None:
        if request.headers.get("authorization", "") != f"Bearer {api_key}":
            raise VideosError(401, WRONG_KEY, None, "invalid_api_key")

    async def answer(request: Request, work: Any) -> Response:
        try:
            authorise(request)
            result = await work()
        except VideosError as exc:
            kind = "invalid_request_error" if exc.status < 500 else "server_error"
            error = {"message": exc.message, "type": kind, "param": exc.param, "code": exc.code}
            return JSONResponse({"error": error}, status_code=exc.status)
        return result if isinstance(result, Response) else JSONResponse(result)

    @router.post("/v1/videos")
    async def create(request: Request) -> Response:
        async def work() -> dict[str, Any]:
            return await videos.create(await _fields(request), base_url(request))

        return await answer(request, work)

    @router.post("/v1/videos/extensions")
    async def extend(request: Request) -> Response:
        async def work() -> dict[str, Any]:
            return await videos.extend(await _fields(request), base_url(request))

        return await answer(request, work)

    @router.get("/v1/videos")
    async def list_videos(request: Request) -> Response:
        async def work() -> dict[str, Any]:
            query = request.query_params
            limit = ascii_int(query.get("limit", "20"), max_digits=3)
            if limit is None or not 1 <= limit <= PAGE_MAX:
                raise VideosError(400, f"limit must be 1..{PAGE_MAX}", "limit")
            order = query.get("order", "desc")
            if order not in ("asc", "desc"):
                raise VideosError(400, "order must be asc or desc", "order")
            return videos.page(query.get("after"), limit, order == "asc")

        return await answer(request, work)

    @router.get("/v1/videos/{video_id}")
    async def retrieve(request: Request, video_id: str) -> Response:
        async def work() -> dict[str, Any]:
            return videos.video(videos.get(video_id))

        return await answer(request, work)

    @router.delete("/v1/videos/{video_id}")
    async def delete(request: Request, video_id: str) -> Response:
        async def work() -> dict[str, Any]:
            videos.get(video_id)
            await videos.sandbox.delete(video_id)
            return {"id": video_id, "object": "video.deleted", "deleted": True}

        return await answer(request, work)

    @router.get("/v1/videos/{video_id}/content")
    async def content(request: Request, video_id: str) -> Response:
        async def work() -> Response:
            record = videos.get(video_id)
            variant = request.query_params.get("variant", "video")
            if variant not in ("video", "thumbnail"):
                raise VideosError(404, "the sandbox makes no spritesheet", "variant", "not_found")
            if record.state != "completed":
                raise VideosError(409, "the video is not completed yet", None, "video_not_ready")
            name = record.video if variant == "video" else record.image
            if name is None:  # a completed generation without the file asked for
                raise VideosError(404, f"this video has no {variant}", "variant", "not_found")
            media_type = "video/mp4" if variant == "video" else "image/jpeg"
            return FileResponse(videos.sandbox.files_dir / name, media_type=media_type)

        return await answer(request, work)

    return router
