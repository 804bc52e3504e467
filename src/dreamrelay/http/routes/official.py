"""The official Dream Machine API under /dream-machine/v1, on DreamRelay's task engine and keys.

Errors here are `{"detail": "..."}` (http/errors.py renders them so for this prefix).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dreamrelay.domain.catalog import OFFICIAL_TO_OWN
from dreamrelay.domain.errors import InvalidRequest
from dreamrelay.formats import official
from dreamrelay.http.deps import CallerDep, Limit, Offset, RuntimeDep, json_body_doc, parse_submission
from dreamrelay.http.schemas.official import (
    Credits,
    Detail,
    Generation,
    GenerationCreate,
    GenerationFrame,
    GenerationList,
    Pong,
)
from dreamrelay.services import reads, removal, submit
from dreamrelay.services.submit import GenerationInput

router = APIRouter(prefix="/dream-machine/v1", tags=["official Dream Machine API"])

JSON = "application/json"


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": Detail, "description": "Error"} for status in (401, 429, *statuses)}


def _given(body: GenerationCreate) -> GenerationInput:
    if body.concepts:
        raise InvalidRequest("concepts are not supported")
    frames = body.keyframes
    start = frames.frame0 if frames else None
    end = frames.frame1 if frames else None
    if not body.prompt and start is None and end is None:
        raise InvalidRequest("prompt is required (or give keyframes)")
    return GenerationInput(
        prompt=body.prompt or "",
        aspect_ratio=body.aspect_ratio,
        model=OFFICIAL_TO_OWN[body.model] if body.model else None,
        resolution=body.resolution,
        duration=body.duration,
        loop=bool(body.loop),
        image=None if start is None or isinstance(start, GenerationFrame) else start.url,
        end_image=None if end is None or isinstance(end, GenerationFrame) else end.url,
        start_generation=start.id if isinstance(start, GenerationFrame) else None,
        end_generation=end.id if isinstance(end, GenerationFrame) else None,
        callback_url=body.callback_url,
    )


async def create_generation(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    body, idem = await parse_submission(request, GenerationCreate, "official.generate")
    task = await submit.submit(rt, caller, _given(body), api_format="official", idem=idem)
    return Response(official.encode_generation(task, rt.media_base_url), status_code=201, media_type=JSON)


for _path in ("/generations/video", "/generations"):
    router.add_api_route(
        _path,
        create_generation,
        methods=["POST"],
        status_code=201,
        summary="Create a video generation" + (" (older path)" if _path == "/generations" else ""),
        openapi_extra=json_body_doc(GenerationCreate),
        responses={
            201: {"model": Generation, "description": "Created"},
            **_errors(400, 402, 403, 413, 502, 503),
        },
        operation_id=f"official_create{_path.replace('/', '_')}",
    )


@router.get(
    "/generations",
    summary="Your generations, newest first",
    response_model=GenerationList,
    responses=_errors(400),
)
async def list_generations(
    rt: RuntimeDep,
    caller: CallerDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    page, more = await reads.list_videos(rt, caller, limit=limit, offset=offset)
    body = official.encode_list(page, rt.media_base_url, limit=limit, offset=offset, more=more)
    return Response(body, media_type=JSON)


@router.get(
    "/generations/{generation_id}",
    summary="One generation (any of your video tasks, whatever format created it)",
    response_model=Generation,
    responses=_errors(404),
)
async def get_generation(generation_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    task = await reads.get_task(rt, caller, generation_id)
    return Response(official.encode_generation(task, rt.media_base_url), media_type=JSON)


@router.delete(
    "/generations/{generation_id}",
    status_code=204,
    summary="Delete a generation: a running one is cancelled and its hold released",
    responses={204: {"description": "Deleted"}, **_errors(404)},
)
async def delete_generation(generation_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    await removal.delete_task(rt, caller, generation_id)
    return Response(status_code=204)


@router.get("/ping", summary="Check the key works", response_model=Pong, responses=_errors())
async def ping(caller: CallerDep) -> dict[str, str]:
    return {"message": "pong"}


@router.get("/credits", summary="The account's balance", response_model=Credits, responses=_errors())
async def credits(rt: RuntimeDep, caller: CallerDep) -> dict[str, float]:
    return {"credit_balance": float(await reads.balance(rt, caller))}
