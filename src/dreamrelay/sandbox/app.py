"""The sandbox upstream: the official Dream Machine API over HTTP, rendering real media locally.

It behaves like api.lumalabs.ai as DreamRelay sees it — Bearer auth, `POST /generations` and
`/generations/video` (201), get, list, delete, ping, credits, `{"detail"}` errors, states
queued → dreaming → completed/failed, callbacks on every change — so the whole relay runs and is
tested without leaving the machine. Prompt markers make it misbehave on demand (see README).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from dreamrelay.domain.ids import ascii_int
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.http.clients import address_of, relayed
from dreamrelay.sandbox import dream_machine
from dreamrelay.sandbox.agents import AgentsSandbox, agents_router
from dreamrelay.sandbox.ark import ArkSandbox, ark_router
from dreamrelay.sandbox.auth import WRONG_KEY
from dreamrelay.sandbox.core import SandboxConfig, SandboxError
from dreamrelay.sandbox.generations import Sandbox
from dreamrelay.sandbox.kling import KlingSandbox, kling_router
from dreamrelay.sandbox.kling_video import KlingVideoSandbox, kling_video_router
from dreamrelay.sandbox.openai_videos import VideosSandbox, videos_router


def create_sandbox_app(config: SandboxConfig) -> FastAPI:
    """The official API under /dream-machine/v1, Kling's image and video APIs under /kling/v1, Luma's
    Agents API under /agents/v1, Ark's under /ark/api/v3 and the OpenAI Videos API under /openai/v1/videos."""
    sandbox = Sandbox(config)
    kling = KlingSandbox(sandbox)
    kling_video = KlingVideoSandbox(sandbox, sandbox.file_url)
    ark = ArkSandbox(sandbox)
    agents = AgentsSandbox(sandbox, config.output_url_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await sandbox.start()
        try:
            yield
        finally:
            await kling.stop()
            await kling_video.stop()
            await ark.stop()
            await agents.stop()
            await sandbox.stop()

    app = FastAPI(title="DreamRelay sandbox (official Dream Machine API)", lifespan=lifespan)
    app.state.sandbox = sandbox
    app.state.agents = agents

    @app.exception_handler(SandboxError)
    async def sandbox_error(request: Request, exc: SandboxError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    app.include_router(_router(sandbox, config), prefix="/dream-machine/v1")

    def file_url(request: Request, name: str) -> str:
        return sandbox.file_url(_base_url(request), name)

    app.include_router(kling_router(kling, config.api_key, file_url), prefix="/kling")
    app.include_router(kling_video_router(kling_video, config.api_key, _base_url), prefix="/kling")
    app.include_router(agents_router(agents, config.api_key), prefix="/agents/v1")
    app.include_router(ark_router(ark, config.api_key, _base_url), prefix="/ark")
    app.include_router(videos_router(VideosSandbox(sandbox), config.api_key, _base_url), prefix="/openai")
    if config.loopback_only:
        app.add_middleware(LoopbackOnly)
    return app


def _creator(
    create: Callable[[Request, str], Awaitable[JSONResponse]], kind: str
) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def create_kind(request: Request) -> JSONResponse:
        return await create(request, kind)

    return create_kind


class LoopbackOnly:
    """Requests from another machine, or relayed by a proxy, find nothing here (404).

    The mounted sandbox is DreamRelay talking to itself; nobody else has business with it. Its own calls
    come over loopback, or, when `serve --host` binds one address of the machine (a LAN address), from
    that very address: a connection whose peer is the address it was accepted on comes from this
    machine (the kernel gives a connection to one of its own addresses that address as its source; a
    host elsewhere cannot have it). uvicorn puts a trusted proxy's X-Forwarded-For client in
    `scope["client"]`, and any header a proxy adds (`relayed`) marks a relayed request, so a reverse
    proxy on the same host does not open it either. Defence in depth: the key (or a signed link, for
    output files) is what opens anything.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _from_this_machine(scope):
            response = JSONResponse({"detail": "Not Found"}, status_code=404)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _from_this_machine(scope: Scope) -> bool:
    peer = address_of(scope.get("client"))
    if peer is None or relayed(scope.get("headers", [])):
        return False
    return peer.is_loopback or peer == address_of(scope.get("server"))


def _base_url(request: Request) -> str:
    return str(request.url_for("sandbox_ping")).removesuffix("/ping")


def _router(sandbox: Sandbox, config: SandboxConfig) -> APIRouter:
    router = APIRouter()

    def authorise(request: Request) -> None:
        header = request.headers.get("authorization", "")
        if header != f"Bearer {config.api_key}":
            raise SandboxError(401, WRONG_KEY)

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
    async def list_generations(request: Request) -> JsonObject:
        authorise(request)
        limit = ascii_int(request.query_params.get("limit", "100"), max_digits=4)
        offset = ascii_int(request.query_params.get("offset", "0"))
        if limit is None or offset is None:
            raise SandboxError(400, "limit and offset must be integers")
        if not (1 <= limit <= 1000 and offset >= 0):
            raise SandboxError(400, "limit must be 1..1000 and offset at least 0")
        records = sorted(sandbox.records.values(), key=lambda r: r.created_at, reverse=True)
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
    async def get_generation(request: Request, generation_id: str) -> JsonObject:
        authorise(request)
        return sandbox.generation(sandbox.get(generation_id), _base_url(request))

    @router.delete("/generations/{generation_id}")
    async def delete_generation(request: Request, generation_id: str) -> Response:
        authorise(request)
        await sandbox.delete(generation_id)
        return Response(status_code=204)

    @router.get("/files/{name}")
    async def file(name: str, request: Request) -> FileResponse:
        # Asset URLs carry a signature (as a CDN's signed links), or the caller shows the key.
        if not sandbox.may_read_file(request, name):
            raise SandboxError(403, "a signed link or the API key is needed")
        path = sandbox.files_dir / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise SandboxError(404, "file not found")
        media_type = {"mp4": "video/mp4", "png": "image/png"}.get(name.rpartition(".")[2], "image/jpeg")
        return FileResponse(path, media_type=media_type)

    return router
