"""The ASGI application: routers, error rendering, middleware, and the in-process worker and sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import import_module

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from dreamrelay import __version__, logs, metrics, tracing
from dreamrelay.formats.families import FAMILIES
from dreamrelay.http import errors, openapi
from dreamrelay.http.addresses import PerAddressCap
from dreamrelay.http.clients import with_forwarded_client
from dreamrelay.http.console import routes as console
from dreamrelay.http.console.context import install as install_console
from dreamrelay.http.lean import LeanPaths
from dreamrelay.http.middleware import (
    BodyLimit,
    ClientCORS,
    ControlCharacters,
    MediaNoSniff,
    Metrics,
    RateLimitHeaders,
    RequestId,
    TrailingSlash,
)
from dreamrelay.http.routes import account, admin, media, ops, upstream
from dreamrelay.netguard import IPNetwork, parse_networks
from dreamrelay.runtime import Runtime
from dreamrelay.sandbox.app import create_sandbox_app
from dreamrelay.sandbox.core import SandboxConfig
from dreamrelay.settings import Settings
from dreamrelay.store import ledger, migrate
from dreamrelay.store.outage import when_reachable
from dreamrelay.worker.process import follow_and_deliver

log = logging.getLogger(__name__)

SANDBOX_MOUNT = "/sandbox"  # the sandbox serves /sandbox/dream-machine/v1 and /sandbox/kling/v1


class RelayApp(FastAPI):
    """FastAPI with an optional raw-ASGI front: HTTP requests meet `front` first, and whatever it does not
    answer itself it hands to `framework` (the whole FastAPI application, middleware stack included).

    The per-address cap and the lean read paths sit there, so their requests skip FastAPI's and
    Starlette's own outer layers (the per-request telemetry checks, the server-error middleware) as
    well as ours.
    """

    front: ASGIApp | None = None
    trusted_proxies: tuple[IPNetwork, ...] = ()  # whose forwarded client address is believed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.trusted_proxies and scope["type"] in ("http", "websocket"):
            scope = with_forwarded_client(scope, self.trusted_proxies)
        if self.front is not None and scope["type"] == "http":
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def create_app(settings: Settings) -> FastAPI:
    rt = Runtime.from_settings(settings)
    sandbox = None
    if settings.mounts_sandbox:
        sandbox = create_sandbox_app(
            SandboxConfig(
                data_dir=settings.data_dir / "sandbox",
                api_key=rt.sandbox_key,
                queued_seconds=settings.sandbox_queued_seconds,
                dreaming_seconds=settings.sandbox_dreaming_seconds,
                relay_urls=settings.relay_urls,
                loopback_only=True,
            )
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await when_reachable("the API's start", lambda: migrate.upgrade(rt.db))  # waits out an outage
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(rt.close)
            if sandbox is not None:
                # Starlette does not run a mounted app's lifespan; we enter it ourselves.
                await stack.enter_async_context(sandbox.router.lifespan_context(sandbox))
            if rt.inflight.max_tasks:
                # The first marker: from now on every change is fed.
                await when_reachable("the API's start", lambda: rt.inflight.sync(rt.db))
                feed_stop = asyncio.Event()
                feed = asyncio.create_task(rt.inflight.follow(rt.db, feed_stop), name="dreamrelay-feed")

                async def stop_feed() -> None:
                    feed_stop.set()
                    await feed

                stack.push_async_callback(stop_feed)
            if settings.worker_enabled:
                stop = asyncio.Event()
                running = asyncio.create_task(follow_and_deliver(rt, stop), name="dreamrelay-worker")

                async def stop_worker() -> None:
                    stop.set()
                    await running

                stack.push_async_callback(stop_worker)
            yield

    app = RelayApp(
        title="DreamRelay",
        version=__version__,
        description="Relay gateway for asynchronous AI generation tasks (Luma Dream Machine first).",
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.trusted_proxies = parse_networks(settings.trusted_proxies)
    metrics.announce(__version__, rt.db.dialect, ledger.KINDS)
    errors.install(app)
    install_console(app)
    openapi.install(app)
    for family in FAMILIES.values():  # the API families, in registry order (formats/families.py)
        app.include_router(import_module(family.routes).router)
    app.include_router(media.router)
    app.include_router(ops.router)
    app.include_router(account.router)
    app.include_router(admin.router)
    app.include_router(upstream.router)
    app.include_router(console.router)
    if sandbox is not None:
        app.mount(SANDBOX_MOUNT, sandbox)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ControlCharacters)
    app.add_middleware(ClientCORS, origins=[o.strip() for o in settings.cors_origins.split(",") if o.strip()])
    app.add_middleware(RequestId)
    app.add_middleware(Metrics)
    app.add_middleware(MediaNoSniff)  # outside every layer that may answer on its own
    traced = tracing.setup()
    if settings.lean_reads and traced:  # the lean paths inside the tracing layer: every request a span
        app.add_middleware(LeanPaths, rt=rt, max_body_bytes=settings.max_body_bytes)
    if traced:
        app.add_middleware(tracing.asgi_middleware())
    # Keep this the last add_middleware (= the outermost layer): `/x/` is served as `/x` before any
    # router, middleware or raw-ASGI fast path looks at the path, so none of them needs slash variants.
    app.add_middleware(TrailingSlash)
    if settings.lean_reads and not traced:
        # The hottest reads in front of the whole framework, after the same path rewrite; the rest
        # goes on to the framework (where TrailingSlash finds the path already canonical).
        app.front = TrailingSlash(LeanPaths(app.framework, rt=rt, max_body_bytes=settings.max_body_bytes))
    if settings.max_requests_per_address:  # every HTTP request, lean or not, counts once
        app.front = PerAddressCap(
            app.front or app.framework,
            settings.max_requests_per_address,
            exempt_prefix=SANDBOX_MOUNT + "/" if sandbox is not None else None,
        )
    app.router.redirect_slashes = False
    return app


def create_app_from_env() -> FastAPI:
    """The factory `serve --workers N` hands uvicorn: each API process reads DREAMRELAY_* itself."""
    settings = Settings()
    logs.configure(settings.log_format)
    # uvicorn set this process's logging up (access log off, as `serve` asks) before calling this
    # factory, and `configure` made its loggers propagate again: without this line every request of
    # `serve --workers N` wrote an access line, which one-process `serve` never does.
    logging.getLogger("uvicorn.access").propagate = False
    return create_app(settings)
