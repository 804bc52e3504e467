"""Kling video under /kling/v1/videos (text2video, image2video), on DreamRelay's task engine: Kling's
envelope, exactly what Dooy's web client sends and reads."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dreamrelay.domain.catalog import KLING_IMAGE2VIDEO, KLING_TEXT2VIDEO
from dreamrelay.domain.errors import InvalidRequest
from dreamrelay.domain.ids import ascii_int
from dreamrelay.domain.inputs import KlingVideoInput
from dreamrelay.formats import kling
from dreamrelay.formats.families import KLING_VIDEO
from dreamrelay.http.deps import CallerDep, RuntimeDep, json_body_doc, parse_submission
from dreamrelay.http.middleware import counts_as_submit
from dreamrelay.http.schemas.kling import KlingVideoEnvelope, KlingVideoPage, VideoCreate
from dreamrelay.services import kling_video
from dreamrelay.services.auth import Caller

router = APIRouter(prefix=KLING_VIDEO.prefix, tags=["Kling video"])

JSON = "application/json"
Word = Literal["text2video", "image2video"]
_ONE: dict[int | str, dict[str, Any]] = {200: {"model": KlingVideoEnvelope, "description": "The task"}}
_PAGE: dict[int | str, dict[str, Any]] = {200: {"model": KlingVideoPage, "description": "A page of tasks"}}


def given(body: VideoCreate, *, image_to_video: bool) -> KlingVideoInput:
    camera = body.camera_control.model_dump(exclude_none=True) if body.camera_control else None
    return KlingVideoInput(
        prompt=body.prompt or "",
        model=body.model_name or body.model or None,
        mode=body.mode,
        aspect_ratio=body.aspect_ratio,
        duration=int(body.duration) if body.duration is not None else None,
        negative_prompt=body.negative_prompt,
        cfg_scale=body.cfg_scale,
        camera_control=camera,
        image=body.image or None,  # Dooy's client always sends both, empty when there is none
        image_tail=body.image_tail or None,
        callback_url=body.callback_url or None,
        image_to_video=image_to_video,
    )


async def _create(request: Request, rt: RuntimeDep, caller: Caller, word: str) -> Response:
    body, idem = await parse_submission(request, VideoCreate, f"kling.{word}")
    image_to_video = word == KLING_IMAGE2VIDEO
    if not image_to_video and body.image:
        raise InvalidRequest("image: text2video takes no image; POST it to /kling/v1/videos/image2video")
    task = await kling_video.submit(rt, caller, given(body, image_to_video=image_to_video), idem=idem)
    return Response(kling.video_envelope(task, rt.media_base_url), media_type=JSON)


@router.post("/text2video", summary="Text to video", openapi_extra=json_body_doc(VideoCreate), responses=_ONE)
@counts_as_submit(KLING_VIDEO.format)
async def text2video(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    return await _create(request, rt, caller, KLING_TEXT2VIDEO)


@router.post(
    "/image2video", summary="Image to video", openapi_extra=json_body_doc(VideoCreate), responses=_ONE
)
@counts_as_submit(KLING_VIDEO.format)
async def image2video(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    return await _create(request, rt, caller, KLING_IMAGE2VIDEO)


@router.get("/{word}/{task_id}", summary="One video task", responses=_ONE)
async def get_video(word: Word, task_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    task = await kling_video.get_task(rt, caller, word, task_id)
    return Response(kling.video_envelope(task, rt.media_base_url), media_type=JSON)


@router.get("/{word}", summary="A page of video tasks, newest first", responses=_PAGE)
async def list_videos(request: Request, word: Word, rt: RuntimeDep, caller: CallerDep) -> Response:
    number = ascii_int(request.query_params.get("pageNum", "1"), max_digits=6)
    size = ascii_int(request.query_params.get("pageSize", "30"), max_digits=4)
    if number is None or size is None:
        raise InvalidRequest("pageNum and pageSize must be whole numbers")
    tasks = await kling_video.page(rt, caller, word, number, size)
    return Response(kling.video_page(tasks, rt.media_base_url), media_type=JSON)
