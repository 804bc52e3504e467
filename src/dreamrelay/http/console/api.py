"""The customer's JSON API under /console/me/api (the playground's script): the session cookie, a CSRF
header on writes, and the key's rate limit, as the API's own routes."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError

from dreamrelay.domain.catalog import KLING_RESOLUTION_MODES, KLING_VIDEO_MODELS, UNI_MODELS
from dreamrelay.domain.errors import InvalidRequest, TaskNotFound
from dreamrelay.domain.inputs import KlingVideoInput
from dreamrelay.domain.task import Task
from dreamrelay.http.console.context import Ctx
from dreamrelay.http.console.deps import ApiReader, ApiWriter
from dreamrelay.http.console.pages import json_response
from dreamrelay.http.console.session import COOKIE_PATH
from dreamrelay.http.deps import describe, read_json, validated
from dreamrelay.http.schemas.agents import GenerationCreate as AgentsCreate
from dreamrelay.http.schemas.own import OwnSubmit
from dreamrelay.services import agents, generations, kling_video, reads, views

router = APIRouter(prefix=f"{COOKIE_PATH}/me/api")


@router.post("/generations")
async def api_submit(ctx: ApiWriter) -> Response:
    given = await read_json(ctx.request)
    if isinstance(given, dict) and given.get("model_name") in UNI_MODELS:
        return json_response(ctx, (await uni_image(ctx, given)).body)
    if isinstance(given, dict) and given.get("model_name") in tuple(KLING_VIDEO_MODELS):
        return json_response(ctx, (await kling_video_task(ctx, given)).body)
    body = validated(OwnSubmit, given)  # the body read once, as the API's own routes do
    task = await generations.submit_generation(ctx.rt, ctx.caller, body.to_input())
    return json_response(ctx, task.body)


@router.get("/generations/{task_id}")
async def api_task(ctx: ApiReader, task_id: str) -> Response:
    try:
        return json_response(ctx, await reads.get_body(ctx.rt, ctx.caller, task_id))
    except TaskNotFound:  # a Uni-1 image of the playground is an Agents API generation
        return json_response(ctx, (await reads.get_agents_task(ctx.rt, ctx.caller, task_id)).body)


@router.get("/balance")
async def api_balance(ctx: ApiReader) -> Response:
    """The header's balance, refreshed by the playground when a task ends."""
    balance = await views.balance(ctx.rt.db, ctx.signed_in.account_id)
    return json_response(ctx, orjson.dumps({"balance": balance}))


async def kling_video_task(ctx: Ctx, given: dict[str, Any]) -> Task:
    """A playground prompt for a Kling video model, in the own format's words: 720p is std, 1080p pro."""
    resolution, duration = given.get("resolution") or "720p", given.get("duration") or "5s"
    modes = KLING_RESOLUTION_MODES
    if resolution not in modes:
        raise InvalidRequest(f"resolution must be one of {', '.join(modes)} for {given.get('model_name')}")
    if duration not in ("5s", "10s"):
        raise InvalidRequest("duration must be 5s or 10s for Kling video")
    prompt = given.get("user_prompt")
    fields = KlingVideoInput(
        prompt=prompt if isinstance(prompt, str) else "",
        model=str(given.get("model_name")),
        mode=modes[resolution],
        aspect_ratio=given.get("aspect_ratio") or None,
        duration=int(duration.removesuffix("s")),
    )
    return await kling_video.submit(ctx.rt, ctx.caller, fields)


async def uni_image(ctx: Ctx, given: dict[str, Any]) -> Any:
    """A playground prompt for Uni-1: an Agents API image generation of the signed-in key."""
    ratio = given.get("aspect_ratio")
    fields = {"prompt": given.get("user_prompt"), "type": "image", "model": given.get("model_name")}
    try:
        body = AgentsCreate.model_validate({**fields, **({"aspect_ratio": ratio} if ratio else {})})
    except ValidationError as exc:
        raise InvalidRequest(describe(exc)) from exc
    return await agents.create(ctx.rt, ctx.caller, body.to_input(), None)
