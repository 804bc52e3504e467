"""Operations: liveness, readiness, Prometheus metrics, a short index."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from dreamrelay import __version__, metrics
from dreamrelay.http.deps import RuntimeDep
from dreamrelay.services import operations

router = APIRouter(tags=["operations"])
log = logging.getLogger(__name__)


@router.get("/", summary="What this server is")
async def index() -> dict[str, str]:
    return {"name": "DreamRelay", "version": __version__, "openapi": "/openapi.json", "docs": "/docs"}


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database answers")
async def readyz(rt: RuntimeDep) -> JSONResponse:
    try:
        async with rt.db.reader() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get(
    "/metrics",
    summary="Prometheus metrics (every process on this host in multiprocess mode)",
    response_class=Response,
    responses={200: {"description": "Prometheus text exposition format", "content": {"text/plain": {}}}},
)
async def metrics_text(rt: RuntimeDep) -> Response:
    try:
        status = await operations.snapshot(rt.db, worker_alive_seconds=rt.settings.lease_seconds)
        families = metrics.snapshot_families(status)
    except Exception:  # the counters are still worth serving when the store does not answer
        log.exception("could not read the store for /metrics; serving the counters only")
        families = []
    body, content_type = metrics.render(families)
    return Response(body, media_type=content_type)
