"""The web console under /console: static files, and one router per audience (sign-in, operator,
customer, the customer's JSON API)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dreamrelay.http.console import api, customer, customer_keys, operator, operator_codes, signin
from dreamrelay.http.console.assets import ASSETS
from dreamrelay.http.console.session import COOKIE_PATH

router = APIRouter(include_in_schema=False)


@router.get(COOKIE_PATH + "/static/{name}")
async def static(name: str, request: Request) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        return Response(status_code=404)
    etag = f'"{asset.version}"'
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable",
        "ETag": etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


# Self-service (issue 16): the customer's keys and code redemption, the operator's credit codes.
for audience in (signin, operator, operator_codes, customer, customer_keys, api):
    router.include_router(audience.router)
