"""Operations: liveness, readiness, Prometheus metrics, a short index."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from dreamrelay import __version__, metrics
from dreamrelay.domain.errors import InvalidApiKey, RateLimited
from dreamrelay.http.clients import bearer_matches, reads_metrics_freely
from dreamrelay.http.deps import RuntimeDep
from dreamrelay.netguard import parse_networks
from dreamrelay.runtime import Runtime
from dreamrelay.services import operations
from dreamrelay.services.auth import sign_in_attempt

router = APIRouter(tags=["operations"])
log = logging.getLogger(__name__)

NOT_READY = "the database does not answer"


@router.get("/", summary="What this server is")
async def index() -> dict[str, str]:
    return {"name": "DreamRelay", "version": __version__, "openapi": "/openapi.json", "docs": "/docs"}


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database answers")
async def readyz(rt: RuntimeDep) -> JSONResponse:
    try:
        await rt.db.ping()
    except Exception as exc:
        # Our words for whoever probes it; the driver's class and text only in the operator's log.
        log.warning("readyz: the database does not answer: %s: %s", type(exc).__name__, exc)
        return JSONResponse({"status": "unavailable", "reason": NOT_READY}, status_code=503)
    return JSONResponse({"status": "ready"})


async def _may_read_metrics(request: Request, rt: Runtime) -> None:
    """Loopback and DREAMRELAY_METRICS_NETWORKS read freely; anyone else needs the metrics token or the
    admin token, wrong tokens throttled with the admin sign-in's attempts (no way around that limit)."""
    settings = rt.settings
    if reads_metrics_freely(request.scope, parse_networks(settings.metrics_networks)):
        return
    authorization = request.headers.get("authorization")
    right = bearer_matches(authorization, (settings.metrics_token or "", rt.admin_token))
    if authorization:
        decision = await sign_in_attempt(rt, request.client.host if request.client else "?", counts=not right)
        if not decision.allowed:
            raise RateLimited(
                "too many wrong tokens from this address; try again later", headers=decision.headers()
            )
    if not right:
        raise InvalidApiKey(
            "/metrics needs Authorization: Bearer <DREAMRELAY_METRICS_TOKEN or the admin token> from this "
            "address (loopback and DREAMRELAY_METRICS_NETWORKS need none)",
            code="metrics_token_required",
        )


@router.get(
    "/metrics",
    summary="Prometheus metrics (every process on this host in multiprocess mode)",
    response_class=Response,
    responses={200: {"description": "Prometheus text exposition format", "content": {"text/plain": {}}}},
)
async def metrics_text(request: Request, rt: RuntimeDep) -> Response:
    await _may_read_metrics(request, rt)
    try:
        status = await operations.snapshot(rt.db, worker_alive_seconds=rt.settings.lease_seconds)
        families = operations.gauges(status)
    except Exception:  # the counters are still worth serving when the store does not answer
        log.exception("could not read the store for /metrics; serving the counters only")
        families = []
    body, content_type = metrics.render(families)
    return Response(body, media_type=content_type)
