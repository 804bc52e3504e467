"""The sandbox's Luma Agents API: POST/GET /generations with Ray 3.2 video and Uni-1 images.

It answers as agents.lumalabs.ai/v1 does for a relay: Bearer auth, 201 on create, `{"detail"}`
errors, states queued → processing → completed | failed with a `failure_code`, and `output[]`
URLs that are presigned and expire (an expired one answers 403 with an S3 "Request has expired"
body). Everything is rendered for real (see render.py): Ray 3.2 clips at 24 fps (5 s = 121
frames, 10 s = 241), a resolution is the short side's lines, edits start from the source's
frames, reframes put the source where `source_position` says, images are PNG or JPEG as asked.

Prompt markers (any type): `[sandbox:reject]` → 400, `[sandbox:error]` → 500,
`[sandbox:stall]` never finishes, `[sandbox:fail]` fails with `generation_failed`,
`[sandbox:fail:<failure_code>]` fails with that code, `[sandbox:expired]` completes with output
URLs that have already expired.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from dreamrelay.domain.catalog import (
    AGENTS_FAILURE_CODES,
)
from dreamrelay.domain.ids import ascii_int, is_ascii_token
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.media import probe
from dreamrelay.sandbox.agents_requests import AgentsError, validate
from dreamrelay.sandbox.auth import WRONG_KEY
from dreamrelay.sandbox.core import SandboxCore
from dreamrelay.sandbox.render import (
    EDIT_WEIGHTS,
    RenderSpec,
    SourcePosition,
    edit_video,
    ray32_dimensions,
    ray32_frames,
    reframe_video,
    render_uni_image,
    render_video,
    uni_dimensions,
)

API_VERSION = "2026-04-01"
MAX_MEDIA_BYTES = 50 * 1024 * 1024
MAX_EDIT_SOURCE_SECONDS = 18.0
OUTPUT_URL_SECONDS = 3600.0
_FAIL_MARKER = re.compile(r"\[sandbox:fail(?::([a-z_]+))?\]")


class RenderFailure(Exception):
    """The generation cannot be rendered; `code` is the failure_code it ends with."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class Output:
    type: str  # video | image
    name: str  # file name under the sandbox's files directory


@dataclass(kw_only=True)
class AgentsGeneration:
    """One generation as the sandbox keeps it (in memory); its job changes it as it moves."""

    id: str
    created_at: float  # unix seconds
    model: str
    type: str
    state: str = "queued"
    failure_code: str | None = None
    failure_reason: str | None = None
    request: JsonObject  # as validated (sandbox/agents_requests.py)
    outputs: list[Output] = field(default_factory=list)
    expires_at: int | None = None  # when its output links stop working (unix seconds)

    def fail(self, code: str, reason: str) -> None:
        self.state, self.failure_code, self.failure_reason = "failed", code, reason


class AgentsSandbox:
    """Generations in memory (unfinished ones are forgotten on restart); rendered files on disk."""

    def __init__(self, sandbox: SandboxCore, output_url_seconds: float = OUTPUT_URL_SECONDS) -> None:
        self.sandbox = sandbox
        self.output_url_seconds = output_url_seconds
        self.records: dict[str, AgentsGeneration] = {}
        self.jobs: set[asyncio.Task[None]] = set()
        self._signing_key = secrets.token_bytes(32)

    @property
    def files_dir(self) -> Path:
        return self.sandbox.files_dir

    # ---- API -------------------------------------------------------------------------------
    def create(self, body: Any) -> AgentsGeneration:
        request = validate(body)
        prompt = request["prompt"]
        if "[sandbox:reject]" in prompt:
            raise AgentsError(400, "request rejected by the [sandbox:reject] marker")
        if "[sandbox:error]" in prompt:
            raise AgentsError(500, "internal error simulated by the [sandbox:error] marker")
        for ref in _generation_refs(request):
            parent = self.records.get(ref)
            if parent is None:
                raise AgentsError(404, f"generation {ref} not found")
            if parent.state != "completed":
                raise AgentsError(422, f"generation {ref} is {parent.state}, not completed")
        record = AgentsGeneration(
            id=str(uuid.uuid4()),
            created_at=time.time(),
            model=request["model"],
            type=request["type"],
            request=request,
        )
        self.records[record.id] = record
        job = asyncio.create_task(self._run(record), name=f"sandbox-agents-{record.id}")
        self.jobs.add(job)
        job.add_done_callback(self.jobs.discard)
        return record

    def get(self, generation_id: str) -> AgentsGeneration:
        record = self.records.get(generation_id)
        if record is None:
            raise AgentsError(404, "Generation not found")
        return record

    def generation(self, record: AgentsGeneration, base_url: str) -> JsonObject:
        outputs = None
        if record.state == "completed" and record.expires_at is not None:
            outputs = [
                {"type": out.type, "url": self._presigned(base_url, out.name, record.expires_at)}
                for out in record.outputs
            ]
        return {
            "id": record.id,
            "created_at": _iso(record.created_at),
            "model": record.model,
            "state": record.state,
            "type": record.type,
            "failure_code": record.failure_code,
            "failure_reason": record.failure_reason,
            "output": outputs,
        }

    def output_path(self, name: str, expires: str, signature: str) -> Path:
        """The file an output URL names, if its signature holds and it has not expired (403 otherwise)."""
        expiry = ascii_int(expires)
        if expiry is None or not is_ascii_token(signature):
            raise AgentsError(403, "AccessDenied")
        if not hmac.compare_digest(self._sign(name, expiry), signature):
            raise AgentsError(403, "SignatureDoesNotMatch")
        if time.time() > expiry:
            raise AgentsError(403, "Request has expired")
        path = self.files_dir / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise AgentsError(404, "NoSuchKey")
        return path

    async def stop(self) -> None:
        for job in self.jobs:
            job.cancel()
        await asyncio.gather(*self.jobs, return_exceptions=True)

    # ---- presigned output URLs -----------------------------------------------------------------
    def _sign(self, name: str, expiry: int) -> str:
        return hmac.new(self._signing_key, f"{name}:{expiry}".encode(), hashlib.sha256).hexdigest()

    def _presigned(self, base_url: str, name: str, expiry: int) -> str:
        return f"{base_url}/outputs/{name}?X-Amz-Expires={expiry}&X-Amz-Signature={self._sign(name, expiry)}"

    # ---- driving one generation ----------------------------------------------------------------
    async def _run(self, record: AgentsGeneration) -> None:
        config = self.sandbox.config
        prompt = record.request["prompt"]
        await asyncio.sleep(config.queued_seconds)
        record.state = "processing"
        if "[sandbox:stall]" in prompt:
            return
        started = time.monotonic()
        cancel = threading.Event()
        try:
            outputs = await self._render(record.request, cancel)
        except RenderFailure as exc:
            record.fail(exc.code, str(exc))
            return
        except asyncio.CancelledError:
            cancel.set()
            raise
        except Exception as exc:
            record.fail("generation_failed", f"rendering failed: {exc}")
            return
        await asyncio.sleep(max(config.dreaming_seconds - (time.monotonic() - started), 0))
        marker = _FAIL_MARKER.search(prompt)
        if marker:
            code = marker.group(1) or "generation_failed"
            if code not in AGENTS_FAILURE_CODES:
                code = "generation_failed"
            reason = f"generation failed ([sandbox:fail{':' + code if marker.group(1) else ''}] marker)"
            record.fail(code, reason)
            return
        now = time.time()
        lifetime = -1 if "[sandbox:expired]" in prompt else self.output_url_seconds
        record.state, record.outputs, record.expires_at = "completed", outputs, int(now + lifetime)

    async def _render(self, request: JsonObject, cancel: threading.Event) -> list[Output]:
        kind = request["type"]
        if kind in ("image", "image_edit"):
            return [await self._image(request)]
        if kind == "video":
            return [await self._video(request, cancel)]
        source = await self._video_source(request["source"])
        target = self.files_dir / f"agents-{uuid.uuid4().hex}.mp4"
        options = request.get("video") or {}
        if kind == "video_edit":
            seconds = await anyio.to_thread.run_sync(lambda: probe.probe_video(source).duration)
            if seconds > MAX_EDIT_SOURCE_SECONDS:
                raise RenderFailure(
                    "invalid_request", f"the source video is longer than {MAX_EDIT_SOURCE_SECONDS:.0f} s"
                )
            weight = EDIT_WEIGHTS.get((options.get("edit") or {}).get("strength") or "flex_2", 0.5)
            await anyio.to_thread.run_sync(
                edit_video, source, target, request["prompt"], weight, cancel, limiter=self.sandbox.limiter
            )
        else:
            canvas = ray32_dimensions(options.get("resolution") or "720p", request["aspect_ratio"])
            given = options.get("source_position")
            position = (
                SourcePosition(given["x_norm"], given["y_norm"], given["w_norm"], given["h_norm"])
                if given
                else None
            )
            await anyio.to_thread.run_sync(
                reframe_video, source, target, canvas, position, cancel, limiter=self.sandbox.limiter
            )
        return [Output("video", target.name)]

    async def _video(self, request: JsonObject, cancel: threading.Event) -> Output:
        options = request.get("video") or {}
        start = end = None
        keyframes = options.get("keyframes") or []
        if keyframes:
            # Anchored frames: the earliest starts the clip, the latest (if later than frame 0) ends it.
            anchored = sorted(
                zip(options["keyframe_indexes"], keyframes, strict=True), key=lambda pair: pair[0]
            )
            start = await self._image_bytes(anchored[0][1], last_frame=True)
            if len(anchored) > 1:
                end = await self._image_bytes(anchored[-1][1], last_frame=False)
        else:
            if options.get("start_frame"):
                start = await self._image_bytes(options["start_frame"], last_frame=True)
            if options.get("end_frame"):
                end = await self._image_bytes(options["end_frame"], last_frame=False)
        width, height = ray32_dimensions(options.get("resolution") or "720p", request["aspect_ratio"])
        spec = RenderSpec(
            prompt=request["prompt"],
            width=width,
            height=height,
            frames=ray32_frames(options.get("duration") or "5s"),
            loop=bool(options.get("loop")),
            start_image=start,
            end_image=end,
        )
        target = self.files_dir / f"agents-{spec.cache_key}.mp4"
        lock = self.sandbox.render_locks.setdefault(spec.cache_key, asyncio.Lock())
        async with lock:
            if not target.exists():
                await anyio.to_thread.run_sync(
                    render_video, spec, target, cancel, limiter=self.sandbox.limiter
                )
        return Output("video", target.name)

    async def _image(self, request: JsonObject) -> Output:
        source = (
            await self._image_bytes(request["source"], last_frame=True) if request.get("source") else None
        )
        references = tuple(
            [await self._image_bytes(ref, last_frame=True) for ref in request.get("image_ref") or []]
        )
        if source is not None and not request.get("aspect_ratio_given"):
            size = await anyio.to_thread.run_sync(_fitted_size, source, request["model"])
        else:
            size = uni_dimensions(request["aspect_ratio"], request["model"])
        output_format = request.get("output_format") or "png"
        try:
            data = await anyio.to_thread.run_sync(
                lambda: render_uni_image(
                    request["prompt"], size, output_format=output_format, source=source, references=references
                )
            )
        except probe.MediaError as exc:
            raise RenderFailure("corrupt_input", f"an input image could not be decoded: {exc}") from exc
        name = f"agents-{uuid.uuid4().hex}.{'jpg' if output_format == 'jpeg' else 'png'}"
        (self.files_dir / name).write_bytes(data)
        return Output("image", name)

    # ---- inputs ------------------------------------------------------------------------------
    async def _image_bytes(self, ref: JsonObject, *, last_frame: bool) -> bytes:
        """An ImageRef as image bytes: fetched, decoded, or a prior generation's output (a video's last
        frame when it starts a clip, its first when it ends one)."""
        if ref.get("generation_id"):
            parent = self.get(ref["generation_id"])
            out = parent.outputs[0]
            path: Path = self.files_dir / out.name
            if out.type == "image":
                return await anyio.to_thread.run_sync(path.read_bytes)
            first, last = await anyio.to_thread.run_sync(probe.first_and_last_frames, path)
            return probe.jpeg_bytes(last if last_frame else first)
        data = await self._media_bytes(ref)
        if probe.sniff_image(data) is None:
            raise RenderFailure("unsupported_format", "an input image is neither JPEG nor PNG")
        return data

    async def _video_source(self, ref: JsonObject) -> Path:
        if ref.get("generation_id"):
            parent = self.get(ref["generation_id"])
            out = parent.outputs[0]
            if out.type != "video":
                raise RenderFailure("invalid_request", "the source generation is not a video")
            source: Path = self.files_dir / out.name
            return source
        data = await self._media_bytes(ref)
        path = self.files_dir / f"source-{hashlib.sha256(data).hexdigest()[:32]}.mp4"
        path.write_bytes(data)
        try:
            await anyio.to_thread.run_sync(probe.probe_video, path)
        except probe.MediaError as exc:
            path.unlink(missing_ok=True)
            raise RenderFailure("corrupt_input", f"the source video could not be decoded: {exc}") from exc
        return path

    async def _media_bytes(self, ref: JsonObject) -> bytes:
        if ref.get("data") is not None:
            try:
                data = base64.b64decode(ref["data"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise RenderFailure("corrupt_input", "data is not valid base64") from exc
        else:
            try:  # through URL safety; one message whatever the cause (no port scanning through us)
                data = await self.sandbox.fetch_image(ref["url"], MAX_MEDIA_BYTES, "an input")
            except RuntimeError as exc:
                raise RenderFailure("output_not_found", str(exc)) from None
        if len(data) > MAX_MEDIA_BYTES:
            raise RenderFailure("image_too_large", f"an input is larger than {MAX_MEDIA_BYTES} bytes")
        return data


def _fitted_size(source: bytes, model: str) -> tuple[int, int]:
    """An edit keeps its source's aspect ratio, at the model's pixel count."""
    width, height = probe.image_size(source)
    pixels = 1024 * 1024 * (4 if model == "uni-1-max" else 1)
    scale = (pixels / (width * height)) ** 0.5
    return max(16, round(width * scale / 16) * 16), max(16, round(height * scale / 16) * 16)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def _generation_refs(request: JsonObject) -> list[str]:
    options = request.get("video") or {}
    refs = [request.get("source"), options.get("start_frame"), options.get("end_frame")]
    refs += list(options.get("keyframes") or []) + list(request.get("image_ref") or [])
    return [ref["generation_id"] for ref in refs if ref and ref.get("generation_id")]


# ---- routes --------------------------------------------------------------------------------------
def agents_router(agents: AgentsSandbox, api_key: str) -> APIRouter:
    router = APIRouter()
    headers = {"X-API-Version": API_VERSION}

    def authorise(request: Request) -> None:
        if request.headers.get("authorization", "") != f"Bearer {api_key}":
            raise AgentsError(401, WRONG_KEY)

    def base(request: Request) -> str:
        return str(request.url_for("sandbox_agents_create")).removesuffix("/generations")

    def error(exc: AgentsError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    @router.post("/generations", name="sandbox_agents_create")
    async def create(request: Request) -> JSONResponse:
        try:
            authorise(request)
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError as exc:
                raise AgentsError(400, "request body is not valid JSON") from exc
            record = agents.create(body)
            return JSONResponse(agents.generation(record, base(request)), status_code=201, headers=headers)
        except AgentsError as exc:
            return error(exc)

    @router.get("/generations/{generation_id}")
    async def get(generation_id: str, request: Request) -> JSONResponse:
        try:
            authorise(request)
            return JSONResponse(agents.generation(agents.get(generation_id), base(request)), headers=headers)
        except AgentsError as exc:
            return error(exc)

    @router.get("/files")
    async def files(request: Request) -> JSONResponse:
        """The sandbox keeps no uploaded files: an empty first page (also what a channel probe reads)."""
        try:
            authorise(request)
        except AgentsError as exc:
            return error(exc)
        return JSONResponse({"data": [], "has_more": False, "next_cursor": None}, headers=headers)

    @router.get("/outputs/{name}")
    async def output(name: str, request: Request) -> Response:
        # Presigned like an S3 object: no Authorization, the query string is the credential.
        query = request.query_params
        try:
            path = agents.output_path(name, query.get("X-Amz-Expires", ""), query.get("X-Amz-Signature", ""))
        except AgentsError as exc:
            code = "AccessDenied" if exc.status == 403 else "NoSuchKey"
            xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            xml += f"<Message>{exc.detail}</Message></Error>"
            return Response(xml, status_code=exc.status, media_type="application/xml")
        media_type = {".mp4": "video/mp4", ".png": "image/png"}.get(path.suffix, "image/jpeg")
        return FileResponse(path, media_type=media_type)

    return router
