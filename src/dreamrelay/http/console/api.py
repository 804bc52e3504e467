"""The customer's JSON API under /console/me/api (the playground's script): the session cookie, a CSRF
header on writes, and the key's rate limit, as the API's own routes."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from dreamrelay.http.console.deps import ApiReader, ApiWriter
from dreamrelay.http.console.session import COOKIE_PATH
from dreamrelay.http.console.web import json_response
from dreamrelay.http.deps import parse_body
from dreamrelay.http.schemas.own import OwnSubmit
from dreamrelay.services import reads, submit, views

router = APIRouter(prefix=f"{COOKIE_PATH}/me/api")


@router.post("/generations")
async def api_submit(ctx: ApiWriter) -> Response:
    body = await parse_body(ctx.request, OwnSubmit)
    task = await submit.submit(ctx.rt, ctx.caller, body.to_input())
    return json_response(ctx, task.body)


@router.get("/generations/{task_id}")
async def api_task(ctx: ApiReader, task_id: str) -> Response:
    return json_response(ctx, await reads.get_body(ctx.rt, ctx.caller, task_id))


@router.get("/balance")
async def api_balance(ctx: ApiReader) -> Response:
    """The header's balance, refreshed by the playground when a task ends."""
    balance = await views.balance(ctx.rt.db, ctx.signed_in.account_id)
    return json_response(ctx, orjson.dumps({"balance": balance}))
