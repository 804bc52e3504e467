"""Kling image generation under /kling/v1, on DreamRelay's task engine (image tasks)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dreamrelay.domain.inputs import ImagesInput
from dreamrelay.formats import kling
from dreamrelay.formats.families import KLING
from dreamrelay.http.deps import CallerDep, RuntimeDep, json_body_doc, parse_submission
from dreamrelay.http.middleware import counts_as_submit
from dreamrelay.http.schemas.kling import ImageCreate, KlingEnvelope
from dreamrelay.services import reads, submit

router = APIRouter(prefix=KLING.prefix, tags=["Kling images"])

JSON = "application/json"
_ENVELOPE: dict[int | str, dict[str, Any]] = {200: {"model": KlingEnvelope, "description": "The task"}}


@router.post(
    "/images/generations",
    summary="Generate 1–9 images",
    openapi_extra=json_body_doc(ImageCreate),
    responses=_ENVELOPE,
)
@counts_as_submit(KLING.format)
async def create_images(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    body, idem = await parse_submission(request, ImageCreate, "kling.images")
    given = ImagesInput(
        prompt=body.prompt,
        n=body.n,
        model=body.model,
        negative_prompt=body.negative_prompt,
        image=body.image,
        image_fidelity=body.image_fidelity,
        aspect_ratio=body.aspect_ratio,
        callback_url=body.callback_url,
    )
    task = await submit.submit_images(rt, caller, given, idem=idem)
    return Response(kling.envelope(task.body), media_type=JSON)


@router.get("/images/generations/{task_id}", summary="One image task", responses=_ENVELOPE)
async def get_images(task_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    task = await reads.get_task(rt, caller, task_id, images=True)
    return Response(kling.envelope(task.body), media_type=JSON)
