"""AceData format (family C) under /luma: POST /luma/videos, and POST /luma/tasks with `action`.

`POST /luma/tasks` is shared with the seed's batch query: `http/routes/luma.py` hands a body with an
`action` field here; `{"ids": [...]}` without one stays the seed's query.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from dreamrelay.domain.errors import InvalidRequest
from dreamrelay.domain.ids import is_id
from dreamrelay.domain.inputs import GenerationInput
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.domain.requests import VideoRequest
from dreamrelay.formats import acedata
from dreamrelay.formats.families import ACEDATA
from dreamrelay.http.deps import CallerDep, RuntimeDep, describe, json_body_doc, parse_body
from dreamrelay.http.middleware import counts_as_submit
from dreamrelay.http.schemas.acedata import AceRetrieve, AceRetrieveBatch, AceVideos
from dreamrelay.logs import request_id
from dreamrelay.services import reads, submit, waiting
from dreamrelay.services.auth import Caller

router = APIRouter(prefix=ACEDATA.prefix, tags=["luma (AceData format)"])

JSON = "application/json"
FORMAT = ACEDATA.format
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
    waits = not body.run_async and not body.callback_url
    # A wait's slot is taken before anything is submitted: a caller with too many open gets a 429.
    with rt.waits.slot(caller) if waits else contextlib.nullcontext():
        if body.action == "extend":
            parent_id = _parent_id(rt.media_base_url, body)
            if not given.prompt:  # AceData's extend may leave the prompt out: the parent's carries on
                parent = await reads.get_task(rt, caller, parent_id)
                given = replace(given, prompt=VideoRequest.from_stored(parent.request).prompt)
            task = await submit.extend(rt, caller, parent_id, given, api_format=FORMAT)
        else:
            if not given.prompt:
                raise InvalidRequest("prompt: a prompt is required to generate a video")
            task = await submit.submit(rt, caller, given, api_format=FORMAT)
        if waits:
            task = await waiting.until_finished(rt, caller, task.id, body.timeout, receive=request.receive)
    return _json(acedata.result(task, rt.media_base_url, request_id.get()))


def _parent_id(media_base_url: str, body: AceVideos) -> str:
    """The task to continue: `video_id` (our task id), or the task whose video `video_url` is."""
    if body.video_id:
        return body.video_id
    prefix = f"{media_base_url}/tasks/"
    if body.video_url and body.video_url.startswith(prefix):
        return body.video_url.removeprefix(prefix).split("/", 1)[0]
    raise InvalidRequest("extend needs video_id (or the video_url of one of your videos)")


async def tasks_query(rt: reads.Collaborators, caller: Caller, payload: JsonObject) -> Response:
    """`POST /luma/tasks` with `action`: retrieve one task (`id`) or a batch (`ids`)."""
    trace = request_id.get()
    action = payload.get("action")
    kind = _QUERIES.get(action) if isinstance(action, str) else None  # a list or object is no action
    if kind is None:
        raise InvalidRequest("action must be retrieve (with id) or retrieve_batch (with ids)")
    try:
        query = kind.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest(describe(exc)) from exc
    if isinstance(query, AceRetrieve):
        return _json(acedata.record(await reads.get_task(rt, caller, query.id), rt.media_base_url, trace))
    wanted = [i for i in dict.fromkeys(query.ids) if is_id(i)]
    found = await reads.find_video_tasks(rt, caller, wanted)  # in-flight ones from the mirror
    items = [acedata.record(found[i], rt.media_base_url, trace) for i in wanted if i in found]
    return _json({"items": items, "count": len(items)})


_QUERIES: dict[str, type[AceRetrieve] | type[AceRetrieveBatch]] = {
    "retrieve": AceRetrieve,
    "retrieve_batch": AceRetrieveBatch,
}


def _json(data: JsonObject) -> Response:
    return Response(orjson.dumps(data), media_type=JSON)
