"""The sandbox upstream: the official Dream Machine API over HTTP, rendering real media locally.

It behaves like api.lumalabs.ai as DreamRelay sees it — Bearer auth, `POST /generations` and
`/generations/video` (201), get, list, delete, ping, credits, `{"detail"}` errors, states
queued → dreaming → completed/failed, callbacks on every change — so the whole relay runs and is
tested without leaving the machine. Prompt markers make it misbehave on demand (see README).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from dreamrelay import netguard
from dreamrelay.media import probe
from dreamrelay.netguard import URLPolicy
from dreamrelay.sandbox import dream_machine
from dreamrelay.sandbox.agents import AgentsSandbox, agents_router
from dreamrelay.sandbox.kling import KlingSandbox, kling_router
from dreamrelay.sandbox.render import RenderSpec, dimensions, frame_count, render_video

log = logging.getLogger(__name__)

MODELS = ("ray-1-6", "ray-2", "ray-flash-2")
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")
RESOLUTIONS = ("540p", "720p", "1080p", "4k")
DURATIONS = ("5s", "9s")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
PARALLEL_RENDERS = 2


@dataclass(frozen=True)
class SandboxConfig:
    data_dir: Path
    api_key: str
    queued_seconds: float = 2.0
    dreaming_seconds: float = 5.0
    output_url_seconds: float = 3600.0  # how long an Agents API output URL stays valid
    # Where the sandbox's own requests (keyframe images, callbacks) may go: URL safety's rules, plus
    # these networks, plus the listeners of `relay_urls` (the relay it serves: its /media and
    # /upstream/callbacks). Nothing else private or loopback.
    url_policy: URLPolicy = field(default_factory=URLPolicy)
    relay_urls: tuple[str, ...] = ()
    # Answer only requests from this machine that did not come through a proxy (the mounted sandbox).
    loopback_only: bool = False


class SandboxError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _iso(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Sandbox:
    """Generations kept as JSON files; one driver task per unfinished generation moves it along."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.records_dir = config.data_dir / "generations"
        self.files_dir = config.data_dir / "files"
        self.records: dict[str, dict[str, Any]] = {}
        self.drivers: dict[str, asyncio.Task[None]] = {}
        self.render_locks: dict[str, asyncio.Lock] = {}
        self.limiter = anyio.CapacityLimiter(PARALLEL_RENDERS)
        self.session: aiohttp.ClientSession | None = None
        self.url_policy = config.url_policy
        self.callbacks: set[asyncio.Task[None]] = set()

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self.records_dir.mkdir(parents=True, exist_ok=True)
        self.files_dir.mkdir(parents=True, exist_ok=True)
        for url in self.config.relay_urls:
            self.url_policy = self.url_policy.with_endpoints(await netguard.endpoints_of(url))
        self.session = netguard.guarded_session(self.url_policy)
        for path in sorted(self.records_dir.glob("*.json")):
            try:
                record = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                log.warning("sandbox: unreadable record %s skipped", path)
                continue
            self.records[record["id"]] = record
            if record["state"] in ("queued", "dreaming") and not record.get("stalled"):
                self._drive(record)

    async def stop(self) -> None:
        for task in self.drivers.values():
            task.cancel()
        await asyncio.gather(*self.drivers.values(), return_exceptions=True)
        self.drivers.clear()
        if self.session is not None:
            await self.session.close()

    # ---- API -------------------------------------------------------------------------------
    async def create(
        self, body: Any, base_url: str, kind: str = "video", parent: str | None = None
    ) -> dict[str, Any]:
        request = self._validate(body) if kind == "video" else self._validate_more(body, kind, parent)
        prompt = request.get("prompt") or ""
        if "[sandbox:reject]" in prompt:
            raise SandboxError(400, "request rejected by the [sandbox:reject] marker")
        if "[sandbox:error]" in prompt:
            raise SandboxError(500, "internal error simulated by the [sandbox:error] marker")
        self._check_parents(request)
        record = {
            "id": str(uuid.uuid4()),
            "state": "queued",
            "failure_reason": None,
            "created_at": time.time(),
            "model": request.get("model") or self.records[request["parent"]]["model"],
            "request": request,
            "video": None,
            "image": None,
            "base_url": base_url,
            "stalled": False,
        }
        self._save(record)
        self._drive(record)
        return record

    def get(self, generation_id: str) -> dict[str, Any]:
        record = self.records.get(generation_id)
        if record is None:
            raise SandboxError(404, "Generation not found")
        return record

    async def delete(self, generation_id: str) -> None:
        self.get(generation_id)
        task = self.drivers.pop(generation_id, None)
        if task is not None:
            task.cancel()
        self.records.pop(generation_id, None)
        (self.records_dir / f"{generation_id}.json").unlink(missing_ok=True)

    def generation(self, record: dict[str, Any], base_url: str | None = None) -> dict[str, Any]:
        base = (base_url or record["base_url"]).rstrip("/")
        video = f"{base}/files/{record['video']}" if record["video"] else None
        image = f"{base}/files/{record['image']}" if record["image"] else None
        kind = record["request"].get("generation_type", "video")
        request = {k: v for k, v in record["request"].items() if k != "parent"}
        return {
            "id": record["id"],
            "generation_type": "image" if kind in dream_machine.IMAGE_TYPES else "video",
            "state": record["state"],
            "failure_reason": record["failure_reason"],
            "created_at": _iso(record["created_at"]),
            "assets": {"video": video, "image": image, "progress_video": None},
            "model": record["model"],
            # The callback URL carries the caller's secret token: never shown, not even to the key's holder.
            "request": {k: v for k, v in request.items() if k != "callback_url"},
        }

    # ---- validation --------------------------------------------------------------------------
    def _validate_more(self, body: Any, kind: str, parent_id: str | None) -> dict[str, Any]:
        """Images, upscale, audio, reframes and modify (sandbox/dream_machine.py)."""
        if not isinstance(body, dict):
            raise SandboxError(400, "request body must be a JSON object")
        try:
            if kind in ("upscale_video", "add_audio"):
                parent = self.get(parent_id or "")
                if kind == "upscale_video":
                    return dream_machine.validate_upscale(body, parent)
                return dream_machine.validate_audio(body, parent)
            if kind == "image":
                return dream_machine.validate_image(body)
            if kind == "modify_video":
                return dream_machine.validate_modify(body)
            return dream_machine.validate_reframe(body, kind)
        except dream_machine.Invalid as exc:
            raise SandboxError(400, str(exc)) from exc

    def _validate(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise SandboxError(400, "request body must be a JSON object")
        if body.get("generation_type", "video") != "video":
            raise SandboxError(400, "only generation_type 'video' is supported by the sandbox")
        model = body.get("model", "ray-2")
        if model not in MODELS:
            raise SandboxError(400, f"model must be one of {', '.join(MODELS)}")
        request: dict[str, Any] = {"generation_type": "video", "model": model}
        prompt = body.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise SandboxError(400, "prompt must be a string")
        aspect_ratio = body.get("aspect_ratio", "16:9")
        if aspect_ratio not in ASPECT_RATIOS:
            raise SandboxError(400, f"aspect_ratio must be one of {', '.join(ASPECT_RATIOS)}")
        loop = body.get("loop", False)
        if not isinstance(loop, bool):
            raise SandboxError(400, "loop must be a boolean")
        resolution, duration = body.get("resolution", "720p"), body.get("duration", "5s")
        if model == "ray-1-6":
            resolution, duration = "720p", "5s"
        if resolution not in RESOLUTIONS:
            raise SandboxError(400, f"resolution must be one of {', '.join(RESOLUTIONS)}")
        if duration not in DURATIONS:
            raise SandboxError(400, f"duration must be one of {', '.join(DURATIONS)}")
        keyframes = body.get("keyframes") or {}
        if not isinstance(keyframes, dict) or set(keyframes) - {"frame0", "frame1"}:
            raise SandboxError(400, "keyframes may hold frame0 and frame1 only")
        for name, frame in keyframes.items():
            valid = isinstance(frame, dict) and (
                (frame.get("type") == "image" and isinstance(frame.get("url"), str))
                or (frame.get("type") == "generation" and isinstance(frame.get("id"), str))
            )
            if not valid:
                raise SandboxError(400, f"keyframes.{name} must be an image (url) or a generation (id)")
        if not prompt and not keyframes:
            raise SandboxError(400, "prompt is required")
        callback_url = body.get("callback_url")
        if callback_url is not None and not (
            isinstance(callback_url, str) and callback_url.startswith(("http://", "https://"))
        ):
            raise SandboxError(400, "callback_url must be an http(s) URL")
        request.update(
            prompt=prompt or "",
            aspect_ratio=aspect_ratio,
            loop=loop,
            resolution=resolution,
            duration=duration,
        )
        if keyframes:
            request["keyframes"] = keyframes
        if callback_url:
            request["callback_url"] = callback_url
        return request

    def _check_parents(self, request: dict[str, Any]) -> None:
        for frame in (request.get("keyframes") or {}).values():
            if frame["type"] == "generation":
                parent = self.records.get(frame["id"])
                if parent is None:
                    raise SandboxError(400, f"generation {frame['id']} not found")
                if parent["state"] != "completed":
                    raise SandboxError(400, f"generation {frame['id']} is not completed")

    # ---- driving one generation --------------------------------------------------------------
    def _drive(self, record: dict[str, Any]) -> None:
        self.drivers[record["id"]] = asyncio.create_task(
            self._run(record), name=f"sandbox-generation-{record['id']}"
        )

    async def _run(self, record: dict[str, Any]) -> None:
        rendering: asyncio.Task[tuple[str | None, str | None]] | None = None
        try:
            config = self.config
            prompt = record["request"].get("prompt") or ""
            await self._sleep_until(record["created_at"] + config.queued_seconds)
            if record["state"] == "queued":
                await self._change(record, state="dreaming")
            if "[sandbox:stall]" in prompt:
                await self._change(record, stalled=True)
                return
            rendering = asyncio.create_task(self._render(record))
            await self._sleep_until(record["created_at"] + config.queued_seconds + config.dreaming_seconds)
            if "[sandbox:fail]" in prompt:
                rendering.cancel()
                await self._change(
                    record, state="failed", failure_reason="generation failed ([sandbox:fail] marker)"
                )
                return
            try:
                video, image = await rendering
            except Exception as exc:  # a broken keyframe image or parent video fails the generation
                log.warning("sandbox: generation %s failed to render: %s", record["id"], exc)
                await self._change(record, state="failed", failure_reason=f"rendering failed: {exc}")
                return
            await self._change(record, state="completed", video=video, image=image)
        except asyncio.CancelledError:
            # Deleted or stopping: the render must not outlive its generation (see _render).
            if rendering is not None:
                rendering.cancel()
            raise
        finally:
            self.drivers.pop(record["id"], None)

    async def _sleep_until(self, moment: float) -> None:
        delay = moment - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _render(self, record: dict[str, Any]) -> tuple[str | None, str | None]:
        request = record["request"]
        if request.get("generation_type", "video") != "video":
            cancel = threading.Event()
            try:
                return await dream_machine.render_generation(self, request, cancel)
            except asyncio.CancelledError:
                cancel.set()
                raise
        keyframes = request.get("keyframes") or {}
        start = await self._keyframe_image(keyframes.get("frame0"), last=True)
        end = await self._keyframe_image(keyframes.get("frame1"), last=False)
        width, height = dimensions(request["resolution"], request["aspect_ratio"])
        spec = RenderSpec(
            prompt=request["prompt"],
            width=width,
            height=height,
            frames=frame_count(request["duration"]),
            loop=request["loop"],
            start_image=start,
            end_image=end,
        )
        key = spec.cache_key
        video_path = self.files_dir / f"{key}.mp4"
        image_path = self.files_dir / f"{key}.jpg"
        lock = self.render_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if not (video_path.exists() and image_path.exists()):
                # Cancelling this task abandons the worker thread (asyncio cancellation does not wait
                # for it), so the thread is told to stop too; otherwise it keeps rendering after a
                # delete or a stop and, after a restart, races the new render of the same files.
                cancel = threading.Event()
                try:
                    await anyio.to_thread.run_sync(
                        self._render_files, spec, video_path, image_path, cancel, limiter=self.limiter
                    )
                except asyncio.CancelledError:
                    cancel.set()
                    raise
        return video_path.name, image_path.name

    @staticmethod
    def _render_files(spec: RenderSpec, video_path: Path, image_path: Path, cancel: threading.Event) -> None:
        render_video(spec, video_path, cancel)
        first, _last = probe.first_and_last_frames(video_path)
        partial = image_path.with_name(f"{image_path.stem}.{uuid.uuid4().hex}.partial.jpg")
        partial.write_bytes(probe.jpeg_bytes(first))
        partial.replace(image_path)

    async def _keyframe_image(self, frame: dict[str, Any] | None, *, last: bool) -> bytes | None:
        """An image keyframe is fetched; a generation keyframe gives its parent's last (or first) frame."""
        if frame is None:
            return None
        if frame["type"] == "generation":
            parent = self.records.get(frame["id"])
            if parent is None or not parent.get("video"):
                raise RuntimeError(f"generation {frame['id']} has no video")
            path = self.files_dir / parent["video"]
            first_frame, last_frame = await anyio.to_thread.run_sync(probe.first_and_last_frames, path)
            return probe.jpeg_bytes(last_frame if last else first_frame)
        url = frame["url"]
        if url.startswith("data:"):
            return base64.b64decode(url.split(",", 1)[1])
        return await self.fetch_image(url, MAX_IMAGE_BYTES, "keyframe image")

    async def fetch_image(self, url: str, max_bytes: int, what: str) -> bytes:
        """GET an image through URL safety. One message for every failure: a caller learns nothing
        about which hosts or ports exist (the reason goes to the log only)."""
        assert self.session is not None
        try:
            data, _type = await netguard.fetch_bytes(self.session, url, self.url_policy, max_bytes=max_bytes)
        except (netguard.UnsafeURL, netguard.FetchError) as exc:
            log.info("sandbox: %s %s not fetched: %s", what, url[:200], exc)
            raise RuntimeError(f"{what} could not be fetched") from None
        return data

    async def _change(self, record: dict[str, Any], **values: Any) -> None:
        state_before = record["state"]
        record.update(values)
        self._save(record)
        if record["state"] != state_before and record["request"].get("callback_url"):
            sending = asyncio.create_task(
                self._callback(record["request"]["callback_url"], self.generation(record))
            )
            self.callbacks.add(sending)
            sending.add_done_callback(self.callbacks.discard)

    async def _callback(self, url: str, payload: dict[str, Any]) -> None:
        """As the official API: up to 3 retries 100 ms apart, 5 s timeout each, unsigned."""
        assert self.session is not None
        body = orjson.dumps(payload)
        headers = {"Content-Type": "application/json"}
        for _attempt in range(4):
            try:
                status, _seconds = await netguard.post_json(
                    self.session, url, body, headers, self.url_policy, timeout_seconds=5
                )
            except netguard.UnsafeURL:
                log.info("sandbox: callback to %s refused by URL safety", url[:200])
                return
            except netguard.FetchError:
                status = 0
            if status == 200:
                return
            await asyncio.sleep(0.1)

    def _save(self, record: dict[str, Any]) -> None:
        self.records[record["id"]] = record
        path = self.records_dir / f"{record['id']}.json"
        partial = path.with_suffix(".partial")
        partial.write_bytes(orjson.dumps(record))
        partial.replace(path)


def create_sandbox_app(config: SandboxConfig) -> FastAPI:
    """The official API under /dream-machine/v1, Kling's image API under /kling/v1 and Luma's Agents
    API under /agents/v1."""
    sandbox = Sandbox(config)
    kling = KlingSandbox(sandbox)
    agents = AgentsSandbox(sandbox, config.output_url_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await sandbox.start()
        try:
            yield
        finally:
            await kling.stop()
            await agents.stop()
            await sandbox.stop()

    app = FastAPI(title="DreamRelay sandbox (official Dream Machine API)", lifespan=lifespan)
    app.state.sandbox = sandbox
    app.state.agents = agents

    @app.exception_handler(SandboxError)
    async def sandbox_error(request: Request, exc: SandboxError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    app.include_router(_router(sandbox, config), prefix="/dream-machine/v1")
    app.include_router(kling_router(kling, config.api_key, _base_url), prefix="/kling")
    app.include_router(agents_router(agents, config.api_key), prefix="/agents/v1")
    if config.loopback_only:
        app.add_middleware(LoopbackOnly)
    return app


def _creator(
    create: Callable[[Request, str], Awaitable[JSONResponse]], kind: str
) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def create_kind(request: Request) -> JSONResponse:
        return await create(request, kind)

    return create_kind


FORWARDING_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip", b"x-forwarded-host")


class LoopbackOnly:
    """Requests from another machine, or relayed by a proxy, find nothing here (404).

    The mounted sandbox is DreamRelay talking to itself over loopback; nobody else has business with it.
    uvicorn puts a trusted proxy's X-Forwarded-For client in `scope["client"]`, and any forwarding
    header marks a relayed request, so a reverse proxy on the same host does not open it either.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not _from_this_machine(scope):
            response = JSONResponse({"detail": "Not Found"}, status_code=404)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _from_this_machine(scope: dict[str, Any]) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        loopback = ipaddress.ip_address(str(client[0]).split("%", 1)[0]).is_loopback
    except ValueError:
        return False
    return loopback and not any(name in FORWARDING_HEADERS for name, _value in scope.get("headers", []))


def _base_url(request: Request) -> str:
    return str(request.url_for("sandbox_ping")).removesuffix("/ping")


def _router(sandbox: Sandbox, config: SandboxConfig) -> APIRouter:
    router = APIRouter()

    def authorise(request: Request) -> None:
        header = request.headers.get("authorization", "")
        if header != f"Bearer {config.api_key}":
            raise SandboxError(401, "Invalid API key")

    @router.get("/ping", name="sandbox_ping")
    async def ping(request: Request) -> dict[str, str]:
        authorise(request)
        return {"message": "pong"}

    @router.get("/credits")
    async def credits(request: Request) -> dict[str, float]:
        authorise(request)
        return {"credit_balance": 1_000_000.0}

    async def create(request: Request, kind: str, parent: str | None = None) -> JSONResponse:
        authorise(request)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise SandboxError(400, "request body is not valid JSON") from exc
        base = _base_url(request)
        record = await sandbox.create(body, base, kind, parent)
        # As the official API: 201 for creates, 200 for an upscale or audio of a generation.
        status = 200 if parent is not None else 201
        return JSONResponse(sandbox.generation(record, base), status_code=status)

    for path, kind in (
        ("/generations", "video"),
        ("/generations/video", "video"),
        ("/generations/image", "image"),
        ("/generations/video/reframe", "reframe_video"),
        ("/generations/image/reframe", "reframe_image"),
        ("/generations/video/modify", "modify_video"),
    ):
        # A video create keeps the route name (and OpenAPI operation id) it has always had.
        name = "create" if kind == "video" else None
        router.add_api_route(path, _creator(create, kind), methods=["POST"], name=name)

    @router.post("/generations/{generation_id}/upscale")
    async def upscale(request: Request, generation_id: str) -> JSONResponse:
        return await create(request, "upscale_video", generation_id)

    @router.post("/generations/{generation_id}/audio")
    async def audio(request: Request, generation_id: str) -> JSONResponse:
        return await create(request, "add_audio", generation_id)

    @router.get("/generations/concepts/list")
    async def concepts(request: Request) -> list[str]:
        authorise(request)
        return list(dream_machine.LISTS["concepts"])

    @router.get("/generations/camera_motion/list")
    async def camera_motions(request: Request) -> list[str]:
        authorise(request)
        return list(dream_machine.LISTS["camera_motion"])

    @router.get("/generations")
    async def list_generations(request: Request) -> dict[str, Any]:
        authorise(request)
        try:
            limit = int(request.query_params.get("limit", "100"))
            offset = int(request.query_params.get("offset", "0"))
        except ValueError as exc:
            raise SandboxError(400, "limit and offset must be integers") from exc
        if not (1 <= limit <= 1000 and offset >= 0):
            raise SandboxError(400, "limit must be 1..1000 and offset at least 0")
        records = sorted(sandbox.records.values(), key=lambda r: r["created_at"], reverse=True)
        page = records[offset : offset + limit]
        base = _base_url(request)
        return {
            "generations": [sandbox.generation(r, base) for r in page],
            "count": len(page),
            "has_more": offset + limit < len(records),
            "limit": limit,
            "offset": offset,
        }

    @router.get("/generations/{generation_id}")
    async def get_generation(request: Request, generation_id: str) -> dict[str, Any]:
        authorise(request)
        return sandbox.generation(sandbox.get(generation_id), _base_url(request))

    @router.delete("/generations/{generation_id}")
    async def delete_generation(request: Request, generation_id: str) -> Response:
        authorise(request)
        await sandbox.delete(generation_id)
        return Response(status_code=204)

    @router.get("/files/{name}")
    async def file(name: str) -> FileResponse:
        # Asset URLs are public like Luma's CDN links; names are content hashes.
        path = sandbox.files_dir / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise SandboxError(404, "file not found")
        media_type = {"mp4": "video/mp4", "png": "image/png"}.get(name.rpartition(".")[2], "image/jpeg")
        return FileResponse(path, media_type=media_type)

    return router
