"""The sandbox's Kling video API: POST /v1/videos/text2video and /v1/videos/image2video, GET one task and
a page of them, in Kling's envelope; real H.264 clips.

Honest where a client can tell: 5 s and 10 s clips (121 and 241 frames at 24 fps); std frames have 720
lines on the short side, pro 1080; text2video takes the aspect ratio asked, image2video the one closest to
its image's, starts on that image and, with `image_tail`, ends on the tail's image. Timings and markers
are the sandbox's: queued seconds in `submitted`, dreaming seconds in `processing`, then `succeed`;
`[sandbox:reject]` answers 400, `[sandbox:fail]` fails the task, `[sandbox:short]` makes a 5 s clip
whatever was asked. With `callback_url`, the bare task
object is POSTed on every change, as Kling does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from dreamrelay.domain.catalog import (
    KLING_CAMERA_TYPES,
    KLING_DURATIONS,
    KLING_IMAGE2VIDEO,
    KLING_MODES,
    KLING_TEXT2VIDEO,
    KLING_VIDEO_PROMPT_MAX_CHARS,
    KLING_VIDEO_RATIOS,
    kling_size,
)
from dreamrelay.domain.ids import ascii_int
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.media.probe import open_image
from dreamrelay.sandbox.auth import WRONG_KEY
from dreamrelay.sandbox.core import SandboxCore
from dreamrelay.sandbox.kling import MAX_REFERENCE_BYTES, KlingError
from dreamrelay.sandbox.render import FPS, RenderSpec, render_video

log = logging.getLogger(__name__)

WORDS = (KLING_TEXT2VIDEO, KLING_IMAGE2VIDEO)
PAGE_MAX = 500


@dataclass(frozen=True, slots=True)
class KlingVideoRequest:
    """A create request as checked (`_validate`)."""

    model_name: str
    prompt: str
    mode: str
    duration: int
    aspect_ratio: str
    image: str | None
    image_tail: str | None
    callback_url: str | None


@dataclass(slots=True)
class KlingVideoTask:
    """One video task as the sandbox keeps it (in memory); `shown` turns it into Kling's JSON."""

    task_id: str
    word: str  # text2video or image2video: a task is found only under its own word
    created_at: float
    updated_at: float
    request: KlingVideoRequest
    base_url: str  # where its file is served (the sandbox as the caller reached it)
    status: str = "submitted"
    message: str = ""
    video: str | None = None  # the clip's file name, once it succeeds


class KlingVideoSandbox:
    """Video tasks in memory (forgotten on restart, as the image ones); clips on disk."""

    def __init__(self, sandbox: SandboxCore, sign: Callable[[str, str], str]) -> None:
        self.sandbox = sandbox
        self.sign = sign  # (base URL, file name) → a signed link to the file
        self.records: dict[str, KlingVideoTask] = {}
        self.jobs: set[asyncio.Task[None]] = set()

    def create(self, word: str, body: Any, base_url: str) -> KlingVideoTask:
        request = _validate(word, body)
        if "[sandbox:reject]" in request.prompt:
            raise KlingError(400, 1201, "request rejected by the [sandbox:reject] marker")
        now = time.time()
        record = KlingVideoTask(str(uuid.uuid4()), word, now, now, request, base_url)
        self.records[record.task_id] = record
        self._spawn(self._run(record))
        return record

    def get(self, word: str, task_id: str) -> KlingVideoTask:
        record = self.records.get(task_id)
        if record is None or record.word != word:
            raise KlingError(404, 1203, "task not found")
        return record

    def page(self, word: str, number: int, size: int) -> list[KlingVideoTask]:
        mine = [r for r in self.records.values() if r.word == word]
        mine.sort(key=lambda r: r.created_at, reverse=True)
        return mine[(number - 1) * size : number * size]

    async def stop(self) -> None:
        for job in self.jobs:
            job.cancel()
        await asyncio.gather(*self.jobs, return_exceptions=True)

    def _spawn(self, work: Any) -> None:
        job = asyncio.create_task(work)
        self.jobs.add(job)
        job.add_done_callback(self.jobs.discard)

    async def _run(self, record: KlingVideoTask) -> None:
        config = self.sandbox.config
        request = record.request
        await asyncio.sleep(config.queued_seconds)
        self._change(record, status="processing")
        started = time.monotonic()
        cancel = threading.Event()
        try:
            start = await self._image(request.image, "image")
            end = await self._image(request.image_tail, "image_tail")
            spec = _spec(request, start, end)
            name = f"kling-{uuid.uuid4().hex}.mp4"
            await anyio.to_thread.run_sync(
                render_video, spec, self.sandbox.files_dir / name, cancel, limiter=self.sandbox.limiter
            )
        except asyncio.CancelledError:
            cancel.set()
            raise
        except Exception as exc:  # a broken image fails the task, as upstream would
            self._change(record, status="failed", message=f"rendering failed: {exc}")
            return
        await asyncio.sleep(max(config.dreaming_seconds - (time.monotonic() - started), 0))
        if "[sandbox:fail]" in request.prompt:
            self._change(record, status="failed", message="generation failed ([sandbox:fail] marker)")
            return
        self._change(record, status="succeed", video=name)

    async def _image(self, image: str | None, field: str) -> bytes | None:
        if not image:
            return None
        if not image.startswith(("http://", "https://")):
            try:
                return base64.b64decode(image.split(",", 1)[-1], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise RuntimeError(f"{field} is neither a URL nor base64") from exc
        return await self.sandbox.fetch_image(image, MAX_REFERENCE_BYTES, field)

    def _change(
        self, record: KlingVideoTask, status: str, message: str | None = None, video: str | None = None
    ) -> None:
        record.status, record.updated_at = status, time.time()
        if message is not None:
            record.message = message
        if video is not None:
            record.video = video
        url = record.request.callback_url
        if url:
            self._spawn(self._call_back(url, record))

    async def _call_back(self, url: str, record: KlingVideoTask) -> None:
        """Kling's callback: the bare task object, sent as the sandbox sends every callback (unsigned,
        up to 3 retries 100 ms apart)."""
        await self.sandbox.callback(url, self.shown(record))

    def shown(self, record: KlingVideoTask) -> JsonObject:
        """A task as Kling shows it (the `data` of its answers, and its callback body)."""
        data: JsonObject = {
            "task_id": record.task_id,
            "task_status": record.status,
            "task_status_msg": record.message,
            "task_info": {},
            "created_at": int(record.created_at * 1000),
            "updated_at": int(record.updated_at * 1000),
        }
        if record.status == "succeed" and record.video:
            url = self.sign(record.base_url, record.video)
            seconds = f"{_seconds(record.request) + 1 / FPS:.1f}"  # 121 frames: "5.0"
            data["task_result"] = {"videos": [{"id": record.task_id, "url": url, "duration": seconds}]}
        return data


def _spec(request: KlingVideoRequest, start: bytes | None, end: bytes | None) -> RenderSpec:
    ratio = request.aspect_ratio
    if start is not None:  # image2video: the image sets the frame's shape
        picture = open_image(start)
        ratio = closest_ratio(picture.width, picture.height)
    width, height = kling_size(request.mode, ratio)
    return RenderSpec(
        prompt=request.prompt or "(image to video)",
        width=width,
        height=height,
        frames=_seconds(request) * FPS + 1,
        start_image=start,
        end_image=end,
    )


def _seconds(request: KlingVideoRequest) -> int:
    """How long the clip is: as asked, or 5 s with the `[sandbox:short]` marker (a clip shorter than
    asked, which is charged as what it is)."""
    return KLING_DURATIONS[0] if "[sandbox:short]" in request.prompt else request.duration


def closest_ratio(width: int, height: int) -> str:
    """Of Kling's video ratios, the one nearest an image's shape."""

    def distance(ratio: str) -> float:
        across, _, down = ratio.partition(":")
        return abs(width / height - int(across) / int(down))

    return min(KLING_VIDEO_RATIOS, key=distance)


def _validate(word: str, body: Any) -> KlingVideoRequest:
    if not isinstance(body, dict):
        raise KlingError(400, 1201, "request body must be a JSON object")
    prompt = body.get("prompt") or ""
    if not isinstance(prompt, str) or len(prompt) > KLING_VIDEO_PROMPT_MAX_CHARS:
        most = KLING_VIDEO_PROMPT_MAX_CHARS
        raise KlingError(400, 1201, f"prompt must be text of at most {most} characters")
    image, tail = body.get("image") or None, body.get("image_tail") or None
    for name, value in (("image", image), ("image_tail", tail)):
        if value is not None and not isinstance(value, str):
            raise KlingError(400, 1201, f"{name} must be a URL or base64")
    if word == KLING_IMAGE2VIDEO and image is None:
        raise KlingError(400, 1201, "image is required")
    if word == KLING_TEXT2VIDEO and (not prompt or image is not None):
        raise KlingError(400, 1201, "text2video takes a prompt and no image")
    mode = body.get("mode") or "std"
    if mode not in KLING_MODES:
        raise KlingError(400, 1201, f"mode must be one of {', '.join(KLING_MODES)}")
    duration = str(body.get("duration") or "5")
    if duration not in {str(d) for d in KLING_DURATIONS}:
        raise KlingError(400, 1201, "duration must be 5 or 10")
    ratio = body.get("aspect_ratio") or "16:9"
    if ratio not in KLING_VIDEO_RATIOS:
        raise KlingError(400, 1201, f"aspect_ratio must be one of {', '.join(KLING_VIDEO_RATIOS)}")
    cfg = body.get("cfg_scale")
    if cfg is not None and not (isinstance(cfg, int | float) and 0 <= cfg <= 1):
        raise KlingError(400, 1201, "cfg_scale must be 0..1")
    camera = body.get("camera_control")
    if camera is not None and not (isinstance(camera, dict) and camera.get("type") in KLING_CAMERA_TYPES):
        raise KlingError(400, 1201, f"camera_control.type must be one of {', '.join(KLING_CAMERA_TYPES)}")
    callback_url = body.get("callback_url") or None
    if callback_url is not None and not (
        isinstance(callback_url, str) and callback_url.startswith(("http://", "https://"))
    ):
        raise KlingError(400, 1201, "callback_url must be an http(s) URL")
    return KlingVideoRequest(
        model_name=body.get("model_name") or body.get("model") or "kling-v1",
        prompt=prompt,
        mode=mode,
        duration=int(duration),
        aspect_ratio=ratio,
        image=image,
        image_tail=tail,
        callback_url=callback_url,
    )


def kling_video_router(
    kling: KlingVideoSandbox, api_key: str, base_url: Callable[[Request], str]
) -> APIRouter:
    router = APIRouter()

    def authorise(request: Request) -> None:
        if request.headers.get("authorization", "") != f"Bearer {api_key}":
            raise KlingError(401, 1000, WRONG_KEY)

    def answer(data: Any, status: int = 200, code: int = 0, message: str = "SUCCEED") -> JSONResponse:
        body = {"code": code, "message": message, "request_id": str(uuid.uuid4()), "data": data}
        return JSONResponse(body, status_code=status)

    def check_word(word: str) -> None:
        if word not in WORDS:
            raise KlingError(404, 1203, "no such route")

    @router.post("/v1/videos/{word}")
    async def create(word: str, request: Request) -> JSONResponse:
        try:
            check_word(word)
            authorise(request)
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError as exc:
                raise KlingError(400, 1200, "request body is not valid JSON") from exc
            return answer(kling.shown(kling.create(word, body, base_url(request))))
        except KlingError as exc:
            return answer(None, exc.status, exc.code, exc.message)

    @router.get("/v1/videos/{word}/{task_id}")
    async def get(word: str, task_id: str, request: Request) -> JSONResponse:
        try:
            check_word(word)
            authorise(request)
            return answer(kling.shown(kling.get(word, task_id)))
        except KlingError as exc:
            return answer(None, exc.status, exc.code, exc.message)

    @router.get("/v1/videos/{word}")
    async def page(word: str, request: Request) -> JSONResponse:
        try:
            check_word(word)
            authorise(request)
            number = ascii_int(request.query_params.get("pageNum", "1"), max_digits=6)
            size = ascii_int(request.query_params.get("pageSize", "30"), max_digits=4)
            if number is None or size is None or number < 1 or not 1 <= size <= PAGE_MAX:
                raise KlingError(400, 1201, f"pageNum must be at least 1 and pageSize 1..{PAGE_MAX}")
            return answer([kling.shown(r) for r in kling.page(word, number, size)])
        except KlingError as exc:
            return answer(None, exc.status, exc.code, exc.message)

    return router
