"""The OpenAI Videos API under /v1/videos, over every video model DreamRelay routes.

Errors are OpenAI's envelope {"error": {message, type, param, code}} (formats/families.py::OPENAI); the
statuses are those the openai SDKs map to their exception classes.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from dreamrelay.domain.errors import InvalidRequest
from dreamrelay.formats import videos as fmt
from dreamrelay.formats.families import VIDEOS
from dreamrelay.http import multipart
from dreamrelay.http.deps import CallerDep, RuntimeDep, decode_json
from dreamrelay.http.errors import described
from dreamrelay.http.middleware import counts_as_submit
from dreamrelay.http.routes import media
from dreamrelay.http.schemas.videos import (
    OpenAIErrorBody,
    Video,
    VideoCreate,
    VideoDeleted,
    VideoEdit,
    VideoExtend,
    VideoList,
    VideoRemix,
)
from dreamrelay.services import removal, video_edits
from dreamrelay.services import videos as service
from dreamrelay.services.idempotency import Idempotency

router = APIRouter(prefix=VIDEOS.prefix, tags=["OpenAI Videos API"])

JSON = "application/json"
POLL_HINT = "openai-poll-after-ms"
_TEXT_FIELDS = ("prompt", "model", "seconds", "size", "callback_url")
_REFERENCE_URL, _REFERENCE_FILE = "input_reference[image_url]", "input_reference[file_id]"


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": OpenAIErrorBody, "description": "Error"} for status in (401, 429, *statuses)}


_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": VideoCreate.model_json_schema(ref_template="#/components/schemas/{model}")
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["prompt"],
                    "properties": {
                        **{name: {"type": "string"} for name in _TEXT_FIELDS},
                        "input_reference": {"type": "string", "format": "binary"},
                    },
                }
            },
        },
    }
}


def _fields_body(model: type[BaseModel], upload: str | None = None) -> dict[str, Any]:
    """The request body of a route taking text fields: the JSON schema, and multipart with `video[id]`
    (or, where the route takes one, the file part `upload` instead)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    flat: dict[str, Any] = {name: {"type": "string"} for name in schema["properties"] if name != "video"}
    required = [name for name in schema.get("required", []) if name != "video"]
    if "video" in schema["properties"]:
        flat["video[id]"] = {"type": "string"}
        if upload is None:
            required.append("video[id]")
        else:
            flat[upload] = {"type": "string", "format": "binary"}
    multipart_schema = {"type": "object", "required": required, "properties": flat}
    content = {"application/json": {"schema": schema}, "multipart/form-data": {"schema": multipart_schema}}
    return {"requestBody": {"required": True, "content": content}}


def _from_json(raw: bytes) -> tuple[service.Create, Any]:
    data = decode_json(raw)
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    try:
        body = VideoCreate.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0].get("loc", ()) if exc.errors() else ()
        raise InvalidRequest(described(exc.errors()), param=str(first[0]) if first else None) from exc
    reference = body.input_reference
    image = reference if isinstance(reference, str) else (reference.image_url if reference else None)
    return service.Create(
        prompt=body.prompt,
        model=body.model,
        seconds=str(body.seconds) if body.seconds is not None else None,
        size=body.size,
        image=image,
        file_id=reference.file_id if reference is not None and not isinstance(reference, str) else None,
        callback_url=body.callback_url,
    ), data


# A create's text fields, its input_reference parts and room for a client's extras; a prompt fits a part.
_CREATE_FORM = multipart.Bounds(files=1, fields=16, field_bytes=16_000)
# Extensions and remixes take no upload (one file part is read only to be refused by name); an edit's
# `video` may be one (the body's limit bounds it).
_FIELDS_FORM = multipart.Bounds(files=1, fields=16, field_bytes=16_000)


async def _from_form(request: Request) -> tuple[service.Create, Any]:
    fields, files = await multipart.read(request, _CREATE_FORM)
    for name in (*fields, *files):
        if name not in (*_TEXT_FIELDS, "input_reference", _REFERENCE_URL, _REFERENCE_FILE):
            raise InvalidRequest(f"{name[:64]}: unknown field", param=name[:64])
    if "prompt" not in fields:
        raise InvalidRequest("prompt is required", param="prompt")
    part = files.get("input_reference")
    image = service.data_url(part.data, part.content_type) if part else fields.get(_REFERENCE_URL)
    create = service.Create(
        prompt=fields["prompt"],
        model=fields.get("model"),
        seconds=fields.get("seconds"),
        size=fields.get("size"),
        image=image or fields.get("input_reference"),
        file_id=fields.get(_REFERENCE_FILE),
        callback_url=fields.get("callback_url"),
    )
    # What an Idempotency-Key's repeat must match: the fields, a file by its digest.
    fingerprint = {**fields, **{name: hashlib.sha256(f.data).hexdigest() for name, f in files.items()}}
    return create, fingerprint


@router.post(
    "",
    status_code=200,
    summary="Create a video (JSON or multipart; any video model of the catalog)",
    openapi_extra=_CREATE_BODY,
    responses={200: {"model": Video, "description": "Created"}, **_errors(400, 402, 403, 409, 413, 503)},
)
@counts_as_submit(VIDEOS.format)
async def create_video(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        create, fingerprint = await _from_form(request)
    else:
        create, fingerprint = _from_json(await request.body())
    idem = Idempotency.from_header(request.headers.get("idempotency-key"), "videos.create", fingerprint)
    return Response(await service.create(rt, caller, create, idem), media_type=JSON)


@router.get(
    "",
    summary="Your videos, newest first (a cursor page: after, limit, order)",
    response_model=VideoList,
    responses=_errors(400, 404),
)
async def list_videos(
    rt: RuntimeDep,
    caller: CallerDep,
    after: Annotated[str | None, Query(max_length=64, description="The last id of the page before")] = None,
    limit: Annotated[int, Query(ge=1, le=service.PAGE_MAX)] = service.PAGE_DEFAULT,
    order: Literal["asc", "desc"] = "desc",
) -> Response:
    page = await service.list_page(rt, caller, after=after, limit=limit, order=order)
    return Response(page, media_type=JSON)


@router.get(
    "/{video_id}",
    summary="One video; while it runs, openai-poll-after-ms says when to ask again",
    response_model=Video,
    responses=_errors(404),
)
async def retrieve_video(video_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    body, poll_after = await service.get_video(rt, caller, video_id)
    headers = {POLL_HINT: str(poll_after)} if poll_after is not None else None
    return Response(body, media_type=JSON, headers=headers)


@router.delete(
    "/{video_id}",
    summary="Delete a video: its media is gone; a running one is cancelled and its hold released",
    response_model=VideoDeleted,
    responses=_errors(404),
)
async def delete_video(video_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    task = await service.get_task(rt, caller, video_id)
    await removal.delete_task(rt, caller, task.id)
    return Response(fmt.encode_deleted(task.id), media_type=JSON)


_BINARY = {"schema": {"type": "string", "format": "binary"}}


@router.get(
    "/{video_id}/content",
    summary="The video's bytes (byte ranges), or its thumbnail",
    response_class=Response,
    responses={
        200: {"description": "The file", "content": {"video/mp4": _BINARY, "image/jpeg": _BINARY}},
        206: {"description": "One byte range of the file", "content": {"video/mp4": _BINARY}},
        **_errors(404, 409),
    },
)
async def download_content(
    video_id: str,
    request: Request,
    rt: RuntimeDep,
    caller: CallerDep,
    variant: Literal["video", "thumbnail", "spritesheet"] = "video",
) -> Response:
    task = await service.get_task(rt, caller, video_id)
    return await media.serve(rt, service.content_key(task, variant), request)


async def _flat_fields(
    request: Request, allowed: tuple[str, ...], upload: str | None = None
) -> tuple[dict[str, str], Any, bytes | None]:
    """A JSON or multipart body as text fields, nested objects as `name[key]` (as the SDKs send them), and
    the file part named `upload` if the route takes one; unknown fields and other file parts are refused,
    naming the field. The fingerprint (for Idempotency-Key) holds an upload by its digest."""
    content_type = request.headers.get("content-type", "")
    uploaded: bytes | None = None
    if content_type.lower().startswith("multipart/form-data"):
        fields, files = await multipart.read(request, _FIELDS_FORM)
        for name, part in files.items():
            if name != upload:
                raise InvalidRequest(
                    f"{name[:64]}: uploads are not taken here; name a video of yours (video[id])",
                    param=name[:64].split("[")[0],
                )
            uploaded = part.data
    else:
        data = decode_json(await request.body())
        if not isinstance(data, dict):
            raise InvalidRequest("the request body must be a JSON object")
        fields = {}
        for name, value in data.items():
            inner = value.items() if isinstance(value, dict) else ((None, value),)
            for key, item in inner:
                if not isinstance(item, str | int) or isinstance(item, bool):
                    raise InvalidRequest(f"{name[:64]}: must be a string", param=name[:64])
                fields[f"{name}[{key}]" if key is not None else name] = str(item)
    for name in fields:
        if name not in allowed:
            raise InvalidRequest(f"{name[:64]}: unknown field", param=name[:64].split("[")[0])
    if not fields.get("prompt", "").strip():
        raise InvalidRequest("prompt is required", param="prompt")
    fingerprint: dict[str, str] = dict(fields)
    if uploaded is not None and upload is not None:
        fingerprint[upload] = hashlib.sha256(uploaded).hexdigest()
    return fields, fingerprint, uploaded


@router.post(
    "/extensions",
    summary="Continue a completed video (on the channel that made it)",
    openapi_extra=_fields_body(VideoExtend),
    responses={200: {"model": Video, "description": "Created"}, **_errors(400, 402, 403, 404, 409, 503)},
)
@counts_as_submit(VIDEOS.format)
async def extend_video(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    fields, fingerprint, _ = await _flat_fields(request, ("prompt", "seconds", "video[id]", "callback_url"))
    if "video[id]" not in fields:
        raise InvalidRequest('video is required: {"id": "<a completed video of yours>"}', param="video")
    idem = Idempotency.from_header(request.headers.get("idempotency-key"), "videos.extend", fingerprint)
    body = await service.extend(
        rt,
        caller,
        fields["video[id]"],
        fields["prompt"],
        fields.get("seconds"),
        fields.get("callback_url"),
        idem,
    )
    return Response(body, media_type=JSON)


@router.post(
    "/edits",
    summary="Edit a video with Ray 3.2: a completed one of yours (video[id]) or an uploaded MP4 (video)",
    openapi_extra=_fields_body(VideoEdit, upload="video"),
    responses={200: {"model": Video, "description": "Created"}, **_errors(400, 402, 403, 404, 409, 503)},
)
@counts_as_submit(VIDEOS.format)
async def edit_video(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    fields, fingerprint, uploaded = await _flat_fields(
        request, ("prompt", "video[id]", "callback_url"), upload="video"
    )
    video = uploaded if uploaded is not None else fields.get("video[id]")
    if video is None or (uploaded is not None and "video[id]" in fields):
        raise InvalidRequest(
            'video is required, once: {"id": "<a completed video of yours>"} or an MP4 file part',
            param="video",
        )
    idem = Idempotency.from_header(request.headers.get("idempotency-key"), "videos.edit", fingerprint)
    body = await video_edits.edit(rt, caller, video, fields["prompt"], fields.get("callback_url"), idem)
    return Response(body, media_type=JSON)


@router.post(
    "/{video_id}/remix",
    summary="Remix a completed video: a new one, changed as the prompt says",
    openapi_extra=_fields_body(VideoRemix),
    responses={200: {"model": Video, "description": "Created"}, **_errors(400, 402, 403, 404, 409, 503)},
)
@counts_as_submit(VIDEOS.format)
async def remix_video(video_id: str, request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    fields, fingerprint, _ = await _flat_fields(request, ("prompt",))
    idem = Idempotency.from_header(
        request.headers.get("idempotency-key"), f"videos.remix.{video_id[:64]}", fingerprint
    )
    return Response(await service.remix(rt, caller, video_id, fields["prompt"], idem), media_type=JSON)
