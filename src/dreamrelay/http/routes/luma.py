"""Own-format client API (the seed's family) under /luma."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from dreamrelay.domain.inputs import GenerationInput
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.domain.keys import Caller
from dreamrelay.domain.task import Task
from dreamrelay.formats.families import LUMA
from dreamrelay.http.deps import (
    BatchCallerDep,
    CallerDep,
    RuntimeDep,
    json_body_doc,
    parse_body,
    parse_submission,
    submission,
)
from dreamrelay.http.middleware import counts_as_submit
from dreamrelay.http.routes import acedata
from dreamrelay.http.schemas.own import (
    BatchQuery,
    DownloadUrl,
    FileUpload,
    FileUploaded,
    OwnExtend,
    OwnSubmit,
    OwnTask,
)
from dreamrelay.runtime import Runtime
from dreamrelay.services import generations, reads, submit, uploads, waiting

router = APIRouter(prefix=LUMA.prefix, tags=["luma (own format)"])


def _json_or_none(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None  # parse_batch_ids answers the error


JSON = "application/json"
FORMAT = LUMA.format  # the API format its submits are counted under (dreamrelay_submits_total)
GENERATE = "luma.generate"  # what an Idempotency-Key of a generation is fingerprinted with
_TASK: dict[int | str, JsonObject] = {200: {"model": OwnTask, "description": "The task object"}}


@router.post(
    "/generations", openapi_extra=json_body_doc(OwnSubmit), summary="Submit a video task", responses=_TASK
)
@counts_as_submit(FORMAT)
async def create_generation(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    task = await generated(rt, caller, await request.body(), request.headers.get("idempotency-key"))
    return Response(task.body, media_type=JSON)


async def generated(rt: Runtime, caller: Caller, raw: bytes, idempotency_key: str | None) -> Task:
    """A generation from the own format's body once the caller is admitted (`POST /luma/generations`,
    its sync variant, and http/lean.py's submit path)."""
    body, idem = submission(raw, idempotency_key, OwnSubmit, GENERATE)
    return await generations.submit_generation(rt, caller, body.to_input(), FORMAT, idem)


@router.post(
    "/generations/file_upload",
    openapi_extra=json_body_doc(FileUpload),
    summary="Pre-upload an image (then use public_url as image_url)",
    responses={200: {"model": FileUploaded, "description": "The upload slot"}},
)
async def file_upload(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    body = await parse_body(request, FileUpload)
    return Response(orjson.dumps(await uploads.file_upload(rt, body.url, body.filename)), media_type=JSON)


@router.post(
    "/generations_sync",
    openapi_extra=json_body_doc(OwnSubmit),
    summary="Submit and wait for the end (≤ DREAMRELAY_SYNC_WAIT_SECONDS), answered as the get",
    responses=_TASK,
)
@counts_as_submit(FORMAT)
async def create_generation_sync(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    with rt.waits.slot(caller):  # 429 before anything is submitted when the caller has too many open
        task = await generated(rt, caller, await request.body(), request.headers.get("idempotency-key"))
        finished = await waiting.until_finished(rt, caller, task.id, receive=request.receive)
    return Response(finished.body, media_type=JSON)


@router.post(
    "/generations/{task_id}/extend",
    openapi_extra=json_body_doc(OwnExtend),
    summary="Continue a finished video",
    responses=_TASK,
)
@counts_as_submit(FORMAT)
async def extend_generation(task_id: str, request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    body, idem = await parse_submission(request, OwnExtend, f"luma.extend:{task_id}")
    given = GenerationInput(
        prompt=body.user_prompt,
        duration=body.duration,
        loop=bool(body.loop),
        expand_prompt=bool(body.expand_prompt),
        end_image=body.image_end_url,
        callback_url=body.notify_hook or body.callback_url,
    )
    task = await submit.extend(rt, caller, task_id, given, idem=idem)
    return Response(task.body, media_type=JSON)


@router.get(
    "/generations/{task_id}/download_video_url",
    summary="URL of the finished video",
    responses={200: {"model": DownloadUrl, "description": "The URL"}},
)
async def download_video_url(task_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    return Response(await reads.download_url(rt, caller, task_id), media_type=JSON)


@router.get("/generations/{task_id}", summary="One task", responses=_TASK)
async def get_generation(task_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    return Response(await reads.get_body(rt, caller, task_id), media_type=JSON)


@router.post(
    "/tasks",
    openapi_extra=json_body_doc(BatchQuery),
    summary="Batch query, ≤ 1000 ids",
    responses={200: {"model": list[OwnTask], "description": "The tasks found, in the order asked"}},
)
async def batch_query(request: Request, rt: RuntimeDep, caller: BatchCallerDep) -> Response:
    raw = await request.body()
    payload = _json_or_none(raw)
    if isinstance(payload, dict) and "action" in payload:
        # AceData's task query shares this path; `action` tells it apart. A raw-ASGI fast path for this
        # route must fall through to here for such bodies.
        return await acedata.tasks_query(rt, caller, payload)
    ids = reads.parse_batch_ids(raw)
    return Response(await reads.batch_answer(rt, caller, ids), media_type=JSON)
