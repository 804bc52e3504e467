"""The sandbox's Volcengine Ark content-generation tasks API (Seedance), at /ark/api/v3.

POST/GET/DELETE /contents/generations/tasks[/{id}] with Ark's shapes: `{"id"}` on create, the task object
on get, `{"total", "items"}` on list (page_num/page_size, `filter.status|model|service_tier|task_ids`),
`{}` on delete (a queued task is cancelled, a finished one forgotten with its files, a running one
refused), and `{"error": {code, message, param, type}}` for every refusal. Parameters come as top-level
fields or as text commands in the prompt (`--rs 720p --dur 5`); `null` means absent (the SDK sends every
key). Timings are the video sandbox's: queued seconds `queued`, dreaming seconds `running`, then
`succeeded` with a real H.264 MP4 at the asked ratio, resolution, duration and frame rate, a last-frame
JPEG when `return_last_frame`, and `usage.completion_tokens` = width × height × fps × seconds ÷ 1024 of
the file written. Markers: `[sandbox:reject]` 400, `[sandbox:error]` 500, `[sandbox:fail]` fails the task,
`[sandbox:expire]` expires it, `[sandbox:queue]` keeps it queued until deleted. Status changes are
POSTed to `callback_url` (the task object, unsigned).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from dreamrelay.domain.ark import (
    MAX_IMAGE_BYTES,
    PAGE_NUM_MAX,
    PAGE_SIZE_MAX,
    SIZES,
    STATUSES,
    ArkInvalid,
    validate,
)
from dreamrelay.domain.catalog import seedance_tokens
from dreamrelay.media import probe
from dreamrelay.sandbox.auth import WRONG_KEY
from dreamrelay.sandbox.render import RenderCancelled, RenderSpec, render_video

if TYPE_CHECKING:
    from dreamrelay.sandbox.generations import Sandbox


class ArkError(Exception):
    def __init__(self, status: int, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param

    def body(self) -> dict[str, Any]:
        kind = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 409: "Conflict"}.get(
            self.status, "InternalServerError"
        )
        return {
            "error": {"code": self.code, "message": self.message, "param": self.param or "", "type": kind}
        }


def invalid(param: str, message: str) -> ArkError:
    return ArkError(400, "InvalidParameter", f"the parameter `{param}` {message}", param)


class ArkSandbox:
    """Tasks in memory (the sandbox forgets them on restart); files on disk with the other outputs."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.records: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, asyncio.Task[None]] = {}

    def create(self, body: Any, base_url: str) -> dict[str, Any]:
        try:
            request = validate(body)
        except ArkInvalid as exc:
            raise ArkError(400, "InvalidParameter", exc.message, exc.param) from None
        if "[sandbox:reject]" in request["prompt"]:
            raise ArkError(400, "InvalidParameter", "request rejected by the [sandbox:reject] marker")
        if "[sandbox:error]" in request["prompt"]:
            raise ArkError(
                500, "InternalServiceError", "internal error simulated by the [sandbox:error] marker"
            )
        now = time.time()
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
        record: dict[str, Any] = {
            "id": f"cgt-{stamp}-{uuid.uuid4().hex[:8]}",
            "status": "queued",
            "error": None,
            "created_at": int(now),
            "updated_at": int(now),
            "request": request,
            "base_url": base_url,
            "video": None,
            "last_frame": None,
            "size": None,
            "usage": None,
        }
        self.records[record["id"]] = record
        job = asyncio.create_task(self._run(record))
        self.jobs[record["id"]] = job
        job.add_done_callback(lambda _done: self.jobs.pop(record["id"], None))
        return record

    def get(self, task_id: str) -> dict[str, Any]:
        record = self.records.get(task_id)
        if record is None:
            raise ArkError(404, "ResourceNotFound", f"the task {task_id[:80]} was not found", "task_id")
        return record

    def listed(
        self, status: str | None, model: str | None, tier: str | None, ids: list[str]
    ) -> list[dict[str, Any]]:
        found = [
            r
            for r in self.records.values()
            if (status is None or r["status"] == status)
            and (model is None or r["request"]["model"] == model)
            and (tier is None or r["request"]["service_tier"] == tier)
            and (not ids or r["id"] in ids)
        ]
        return found[::-1]  # newest first (records keep their creation order)

    def delete(self, task_id: str) -> None:
        record = self.get(task_id)
        if record["status"] == "running":
            raise ArkError(
                409, "OperationDenied.InvalidState", "a running task can be neither cancelled nor deleted"
            )
        if record["status"] == "queued":
            self._stop(task_id)
            self._change(record, status="cancelled")
            return
        self._stop(task_id)
        del self.records[task_id]
        for name in (record["video"], record["last_frame"]):
            if name:
                (self.sandbox.files_dir / name).unlink(missing_ok=True)

    async def stop(self) -> None:
        for job in self.jobs.values():
            job.cancel()
        await asyncio.gather(*self.jobs.values(), return_exceptions=True)

    def _stop(self, task_id: str) -> None:
        job = self.jobs.pop(task_id, None)
        if job is not None and job is not asyncio.current_task():
            job.cancel()

    async def _run(self, record: dict[str, Any]) -> None:
        config = self.sandbox.config
        request = record["request"]
        await asyncio.sleep(config.queued_seconds)
        if "[sandbox:queue]" in request["prompt"]:  # queued until deleted (the job is cancelled)
            await asyncio.Event().wait()
        if "[sandbox:expire]" in request["prompt"]:
            self._change(
                record, status="expired", error={"code": "TaskExpired", "message": "the task expired"}
            )
            return
        self._change(record, status="running")
        started = time.monotonic()
        cancel = threading.Event()
        try:
            start = await self._image(
                request["images"].get("first_frame") or request["images"].get("reference_image")
            )
            end = await self._image(request["images"].get("last_frame"))
            made = await anyio.to_thread.run_sync(
                self._render, request, start, end, cancel, limiter=self.sandbox.limiter
            )
        except asyncio.CancelledError:
            cancel.set()
            raise
        except (RuntimeError, RenderCancelled, probe.MediaError) as exc:
            self._change(
                record,
                status="failed",
                error={"code": "InputImageSensitiveContentDetected", "message": str(exc)},
            )
            return
        await asyncio.sleep(max(config.dreaming_seconds - (time.monotonic() - started), 0))
        if "[sandbox:fail]" in request["prompt"]:
            self._change(
                record,
                status="failed",
                error={
                    "code": "OutputVideoSensitiveContentDetected",
                    "message": "generation failed ([sandbox:fail] marker)",
                },
            )
            return
        video, last_frame, (width, height, frames) = made
        used = seedance_tokens(width, height, request["fps"], frames / request["fps"])
        self._change(
            record,
            status="succeeded",
            video=video,
            last_frame=last_frame,
            size=[width, height, frames],
            usage={"completion_tokens": used, "total_tokens": used},
        )

    def _render(
        self, request: dict[str, Any], start: bytes | None, end: bytes | None, cancel: threading.Event
    ) -> tuple[str, str | None, tuple[int, int, int]]:
        ratio = request["ratio"]
        if ratio == "adaptive":
            ratio = _nearest_ratio(start)
        width, height = SIZES[request["resolution"]][ratio]
        frames = request["frames"] or int(request["seconds"] * request["fps"])
        spec = RenderSpec(
            prompt=request["prompt"] or "image to video",
            width=width,
            height=height,
            frames=frames,
            fps=request["fps"],
            start_image=start,
            end_image=end,
        )
        name = f"ark-{uuid.uuid4().hex}"
        video_path = self.sandbox.files_dir / f"{name}.mp4"
        render_video(spec, video_path, cancel)
        found = probe.probe_video(video_path)
        last_name = None
        if request["return_last_frame"]:
            _first, last = probe.first_and_last_frames(video_path)
            last_name = f"{name}-last.jpg"
            (self.sandbox.files_dir / last_name).write_bytes(probe.jpeg_bytes(last))
        return video_path.name, last_name, (found.width, found.height, found.frames)

    async def _image(self, url: str | None) -> bytes | None:
        if url is None:
            return None
        if url.startswith("data:"):
            try:
                return base64.b64decode(url.split(",", 1)[-1], validate=True)
            except (binascii.Error, ValueError):
                raise RuntimeError("an image is neither a URL nor base64") from None
        return await self.sandbox.fetch_image(url, MAX_IMAGE_BYTES, "content image")

    def _change(self, record: dict[str, Any], **values: Any) -> None:
        record.update(values, updated_at=int(time.time()))
        url = record["request"]["callback_url"]
        if url:
            sending = asyncio.create_task(self.sandbox.callback(url, self.shown(record)))
            self.sandbox.callbacks.add(sending)
            sending.add_done_callback(self.sandbox.callbacks.discard)

    def shown(self, record: dict[str, Any]) -> dict[str, Any]:
        """The task object as Ark answers it (and posts it to the callback URL)."""
        request = record["request"]
        body: dict[str, Any] = {"id": record["id"], "model": request["model"], "status": record["status"]}
        if record["error"]:
            body["error"] = record["error"]
        if record["status"] == "succeeded":
            base = record["base_url"]
            content = {"video_url": self.sandbox.file_url(base, record["video"])}
            if record["last_frame"]:
                content["last_frame_url"] = self.sandbox.file_url(base, record["last_frame"])
            body["content"] = content
            body["usage"] = record["usage"]
            width, height, frames = record["size"]
            body.update(
                seed=request["seed"],
                resolution=request["resolution"],
                ratio=_ratio_of(width, height, request["resolution"]),
                duration=round(frames / request["fps"]),
                framespersecond=request["fps"],
            )
            if request["frames"]:
                body["frames"] = request["frames"]
        body.update(
            service_tier=request["service_tier"],
            execution_expires_after=request["execution_expires_after"],
            generate_audio=request["generate_audio"],
            draft=False,
            created_at=record["created_at"],
            updated_at=record["updated_at"],
        )
        return body


def _nearest_ratio(image: bytes | None) -> str:
    """`adaptive`: the listed ratio closest to the first image's (16:9 without one)."""
    if image is None:
        return "16:9"
    width, height = probe.open_image(image).size
    ratios = SIZES["720p"]
    return min(ratios, key=lambda r: abs(ratios[r][0] / ratios[r][1] - width / height))


def _ratio_of(width: int, height: int, resolution: str) -> str:
    return next((r for r, size in SIZES[resolution].items() if size == (width, height)), "adaptive")


def _int_query(request: Request, name: str, default: int, most: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= most:
        raise invalid(name, f"must be an integer from 1 to {most}")
    return int(raw)


def ark_router(ark: ArkSandbox, api_key: str, base_url: Callable[[Request], str]) -> APIRouter:
    router = APIRouter()
    path = "/api/v3/contents/generations/tasks"

    def authorise(request: Request) -> None:
        if request.headers.get("authorization", "") != f"Bearer {api_key}":
            raise ArkError(401, "AuthenticationError", WRONG_KEY)

    def answer(body: dict[str, Any], status: int = 200) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers={"X-Request-Id": uuid.uuid4().hex})

    @router.post(path)
    async def create(request: Request) -> JSONResponse:
        try:
            authorise(request)
            try:
                body = await request.json()
            except ValueError:
                raise ArkError(400, "InvalidParameter", "the request body is not valid JSON") from None
            return answer({"id": ark.create(body, base_url(request))["id"]})
        except ArkError as exc:
            return answer(exc.body(), exc.status)

    @router.get(path)
    async def listing(request: Request) -> JSONResponse:
        try:
            authorise(request)
            page_num = _int_query(request, "page_num", 1, PAGE_NUM_MAX)
            page_size = _int_query(request, "page_size", 10, PAGE_SIZE_MAX)
            query = request.query_params
            status = query.get("filter.status") or None
            if status is not None and status not in STATUSES:
                raise invalid("filter.status", f"must be one of {', '.join(STATUSES)}")
            found = ark.listed(
                status, query.get("filter.model") or None, query.get("filter.service_tier") or None,
                query.getlist("filter.task_ids")[:PAGE_SIZE_MAX],
            )  # fmt: skip
            page = found[(page_num - 1) * page_size : page_num * page_size]
            return answer({"total": len(found), "items": [ark.shown(r) for r in page]})
        except ArkError as exc:
            return answer(exc.body(), exc.status)

    @router.get(path + "/{task_id}")
    async def get(task_id: str, request: Request) -> JSONResponse:
        try:
            authorise(request)
            return answer(ark.shown(ark.get(task_id)))
        except ArkError as exc:
            return answer(exc.body(), exc.status)

    @router.delete(path + "/{task_id}")
    async def delete(task_id: str, request: Request) -> JSONResponse:
        try:
            authorise(request)
            ark.delete(task_id)
            return answer({})
        except ArkError as exc:
            return answer(exc.body(), exc.status)

    return router
