"""The official Dream Machine API under /dream-machine/v1, on DreamRelay's task engine and keys.

Errors here are `{"detail": "..."}` (http/errors.py renders them so for this prefix).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dreamrelay.domain.catalog import (
    CAMERA_MOTIONS,
    CONCEPTS,
    OFFICIAL_TO_OWN,
    POSITION_FIELDS,
    REFRAME_IMAGE,
)
from dreamrelay.domain.errors import InvalidRequest
from dreamrelay.domain.inputs import GenerationInput, ModifyInput, PhotonInput, Reference, ReframeInput
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.formats import official
from dreamrelay.formats.families import OFFICIAL
from dreamrelay.http.deps import CallerDep, Limit, Offset, RuntimeDep, json_body_doc, parse_submission
from dreamrelay.http.middleware import counts_as_submit
from dreamrelay.http.schemas.official import (
    AudioCreate,
    Credits,
    Detail,
    Generation,
    GenerationCreate,
    GenerationFrame,
    GenerationList,
    ImageCreate,
    ImageReframeCreate,
    ModifyCreate,
    Pong,
    UpscaleCreate,
    VideoReframeCreate,
)
from dreamrelay.services import dream_machine, reads, removal, submit

router = APIRouter(prefix=OFFICIAL.prefix, tags=["official Dream Machine API"])

JSON = "application/json"


def _errors(*statuses: int) -> dict[int | str, JsonObject]:
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


@counts_as_submit(OFFICIAL.format)
async def create_generation(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    body, idem = await parse_submission(request, GenerationCreate, "official.generate")
    task = await submit.submit(rt, caller, _given(body), api_format=OFFICIAL.format, idem=idem)
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


# ---- the rest of the Dream Machine API: images, reframes, modify, upscale, audio, lists ------------


def _created(task: Any, rt: Any, status: int = 201) -> Response:
    return Response(official.encode_generation(task, rt.media_base_url), status_code=status, media_type=JSON)


def _create_doc(model: type[Any], summary: str, status: int = 201) -> JsonObject:
    return {
        "status_code": status,
        "summary": summary,
        "openapi_extra": json_body_doc(model),
        "responses": {
            status: {"model": Generation, "description": "Created"},
            **_errors(400, 402, 403, 404, 502, 503),
        },
    }


@router.post("/generations/image", **_create_doc(ImageCreate, "Create an image (photon-1, photon-flash-1)"))
@counts_as_submit(OFFICIAL.format)
async def create_image(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    body, idem = await parse_submission(request, ImageCreate, "official.image")

    def ref(r: Any) -> Reference:
        return Reference(url=r.url, weight=r.weight)

    given = PhotonInput(
        model=body.model,
        prompt=body.prompt,
        aspect_ratio=body.aspect_ratio,
        format=body.format,
        image_ref=tuple(ref(r) for r in body.image_ref or ()),
        style_ref=tuple(ref(r) for r in body.style_ref or ()),
        character_images=tuple(body.character_ref.identity0.images) if body.character_ref else (),
        modify_image_ref=ref(body.modify_image_ref) if body.modify_image_ref else None,
        callback_url=body.callback_url,
    )
    return _created(await dream_machine.submit_image(rt, caller, given, idem), rt)


async def _reframe(request: Request, rt: Any, caller: Any, schema: type[Any], action: str) -> Response:
    body, idem = await parse_submission(request, schema, f"official.{action}")
    given = ReframeInput(
        action=action,
        model=body.model,
        aspect_ratio=body.aspect_ratio,
        media_url=body.media.url,
        prompt=body.prompt or "",
        format=getattr(body, "format", None),
        first_frame_url=first.url if (first := getattr(body, "first_frame", None)) else None,
        position={f: getattr(body, f) for f in POSITION_FIELDS if getattr(body, f) is not None},
        callback_url=body.callback_url,
    )
    return _created(await dream_machine.submit_reframe(rt, caller, given, idem), rt)


@router.post(
    "/generations/video/reframe", **_create_doc(VideoReframeCreate, "Reframe a video to a new aspect ratio")
)
@counts_as_submit(OFFICIAL.format)
async def reframe_video(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    return await _reframe(request, rt, caller, VideoReframeCreate, "reframe_video")


@router.post(
    "/generations/image/reframe", **_create_doc(ImageReframeCreate, "Reframe an image to a new aspect ratio")
)
@counts_as_submit(OFFICIAL.format)
async def reframe_image(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    return await _reframe(request, rt, caller, ImageReframeCreate, REFRAME_IMAGE)


@router.post(
    "/generations/video/modify", **_create_doc(ModifyCreate, "Modify a video (adhere, flex, reimagine)")
)
@counts_as_submit(OFFICIAL.format)
async def modify_video(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    body, idem = await parse_submission(request, ModifyCreate, "official.modify")
    given = ModifyInput(
        model=body.model,
        mode=body.mode,
        media_url=body.media.url,
        prompt=body.prompt or "",
        first_frame_url=body.first_frame.url if body.first_frame else None,
        callback_url=body.callback_url,
    )
    return _created(await dream_machine.submit_modify(rt, caller, given, idem), rt)


@router.post(
    "/generations/{generation_id}/upscale",
    **_create_doc(UpscaleCreate, "Upscale a completed video", status=200),
)
@counts_as_submit(OFFICIAL.format)
async def upscale(generation_id: str, request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    body, idem = await parse_submission(request, UpscaleCreate, f"official.upscale.{generation_id}")
    task = await dream_machine.submit_upscale(
        rt, caller, generation_id, body.resolution, body.callback_url, idem
    )
    return _created(task, rt, 200)


@router.post(
    "/generations/{generation_id}/audio",
    **_create_doc(AudioCreate, "Add sound to a completed video", status=200),
)
@counts_as_submit(OFFICIAL.format)
async def add_audio(generation_id: str, request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    body, idem = await parse_submission(request, AudioCreate, f"official.audio.{generation_id}")
    task = await dream_machine.submit_audio(
        rt, caller, generation_id, body.prompt or "", body.negative_prompt or "", body.callback_url, idem
    )
    return _created(task, rt, 200)


@router.get(
    "/generations/concepts/list",
    summary="Camera concepts a video may name",
    response_model=list[str],
    responses=_errors(),
)
async def concepts(caller: CallerDep) -> list[str]:
    return list(CONCEPTS)


@router.get(
    "/generations/camera_motion/list",
    summary="Camera motions (older name of concepts)",
    response_model=list[str],
    responses=_errors(),
)
async def camera_motions(caller: CallerDep) -> list[str]:
    return list(CAMERA_MOTIONS)


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
    return Response(await reads.get_official_body(rt, caller, generation_id), media_type=JSON)


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
