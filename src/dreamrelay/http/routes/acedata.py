"""AceData format (family C) under /luma: POST /luma/videos, and POST /luma/tasks with `action`.

`POST /luma/tasks` is shared with the seed's batch query: `http/routes/luma.py` hands a body with an
`action` field here; `{"ids": [...]}` without one stays the seed's query.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from dreamrelay.domain.errors import InvalidRequest
from dreamrelay.domain.ids import is_id
from dreamrelay.domain.inputs import GenerationInput
from dreamrelay.formats import acedata
from dreamrelay.http.deps import CallerDep, RuntimeDep, describe, json_body_doc, parse_body
from dreamrelay.http.middleware import counts_as_submit
from dreamrelay.http.schemas.acedata import AceRetrieve, AceRetrieveBatch, AceVideos
from dreamrelay.logs import request_id
from dreamrelay.services import reads, submit, waiting
from dreamrelay.services.auth import Caller
from dreamrelay.store import tasks as task_store

router = APIRouter(prefix="/luma", tags=["luma (AceData format)"])

JSON = "application/json"
FORMAT = "acedata"
DEFAULT_MODEL_NAMES = ("luma", "")  # AceData's own model name: the server's default model


@router.post(
    "/videos",
    openapi_extra=json_body_doc(AceVideos),
    summary="AceData: generate or extend a video (waits for the result unless async or callback_url)",
)
@counts_as_submit(FORMAT)
async def videos(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    body = await parse_body(request, AceVideos)
    given = GenerationInput(
        prompt=body.prompt or "",
        aspect_ratio=body.aspect_ratio,
        model=None if body.model in DEFAULT_MODEL_NAMES else body.model,
        loop=bool(body.loop),
        expand_prompt=bool(body.enhancement),
        image=body.start_image_url,
        end_image=body.end_image_url,
        callback_url=body.callback_url,
    )
    if body.action == "extend":
        parent_id = _parent_id(rt.media_base_url, body)
        if not given.prompt:  # AceData's extend may leave the prompt out: the parent's carries on
            parent = await reads.get_task(rt, caller, parent_id)
            given = replace(given, prompt=parent.request["prompt"])
        task = await submit.extend(rt, caller, parent_id, given, api_format=FORMAT)
    else:
        if not given.prompt:
            raise InvalidRequest("prompt: a prompt is required to generate a video")
        task = await submit.submit(rt, caller, given, api_format=FORMAT)
    if not body.run_async and not body.callback_url:
        task = await waiting.until_finished(rt, caller, task.id, body.timeout)
    return _json(acedata.result(task, rt.media_base_url, request_id.get()))


def _parent_id(media_base_url: str, body: AceVideos) -> str:
    """The task to continue: `video_id` (our task id), or the task whose video `video_url` is."""
    if body.video_id:
        return body.video_id
    prefix = f"{media_base_url}/tasks/"
    if body.video_url and body.video_url.startswith(prefix):
        return body.video_url.removeprefix(prefix).split("/", 1)[0]
    raise InvalidRequest("extend needs video_id (or the video_url of one of your videos)")


async def tasks_query(rt: reads.Collaborators, caller: Caller, payload: dict[str, Any]) -> Response:
    """`POST /luma/tasks` with `action`: retrieve one task (`id`) or a batch (`ids`)."""
    trace = request_id.get()
    try:
        query = _QUERIES[payload.get("action")].model_validate(payload)
    except KeyError:
        raise InvalidRequest("action must be retrieve (with id) or retrieve_batch (with ids)") from None
    except ValidationError as exc:
        raise InvalidRequest(describe(exc)) from exc
    if isinstance(query, AceRetrieve):
        return _json(acedata.record(await reads.get_task(rt, caller, query.id), rt.media_base_url, trace))
    wanted = [i for i in dict.fromkeys(query.ids) if is_id(i)]
    async with rt.db.reader() as conn:
        found = {t.id: t for t in await task_store.find_video_tasks(conn, wanted, caller.account_id)}
    items = [acedata.record(found[i], rt.media_base_url, trace) for i in wanted if i in found]
    return _json({"items": items, "count": len(items)})


_QUERIES: dict[Any, type[AceRetrieve] | type[AceRetrieveBatch]] = {
    "retrieve": AceRetrieve,
    "retrieve_batch": AceRetrieveBatch,
}


def _json(data: dict[str, Any]) -> Response:
    return Response(orjson.dumps(data), media_type=JSON)
