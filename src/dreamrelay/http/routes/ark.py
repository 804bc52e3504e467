"""Volcengine Ark's content-generation tasks API (Seedance) at /api/v3/contents/generations/tasks, and the
same under /seedance/v3 (where relay clients send it): what `volcenginesdkarkruntime`'s
`client.content_generation.tasks.create/get/list/delete` call, with a DreamRelay key as the Bearer key.

Errors are Ark's `{"error": {code, message, param, type}}` (formats/families.py::ARK).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from dreamrelay.domain.errors import InvalidRequest
from dreamrelay.formats import ark as fmt
from dreamrelay.formats.families import ARK_TASKS
from dreamrelay.http.deps import CallerDep, RuntimeDep, decode_json
from dreamrelay.http.middleware import counts_as_submit
from dreamrelay.http.schemas.ark import ArkErrorBody, TaskCreate, TaskId, TaskList
from dreamrelay.http.schemas.ark import Task as TaskBody
from dreamrelay.services import ark as service
from dreamrelay.services.idempotency import Idempotency

JSON = "application/json"
TASKS = "/contents/generations/tasks"
_REF = "#/components/schemas/{model}"


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ArkErrorBody, "description": "Error"} for status in (401, 429, *statuses)}


tasks = APIRouter(tags=["Volcengine Ark tasks API (Seedance)"])


@tasks.post(
    TASKS,
    summary="Create a Seedance video task (content[]: text, image_url; parameters or text commands)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": TaskCreate.model_json_schema(ref_template="#/components/schemas/{model}")}
            },
        }
    },
    responses={200: {"model": TaskId, "description": "Created"}, **_errors(400, 402, 403, 413, 503)},
)
@counts_as_submit(ARK_TASKS.format)
async def create_task(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    body = decode_json(await request.body())
    idem = Idempotency.from_header(request.headers.get("idempotency-key"), "ark.create", body)
    task = await service.create(rt, caller, body, idem)
    return Response(fmt.encode_created(task), media_type=JSON)


def _page(name: str, raw: str | None, default: int, most: int) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6 or not 1 <= int(raw) <= most:
        raise InvalidRequest(f"the parameter `{name}` must be an integer from 1 to {most}", param=name)
    return int(raw)


@tasks.get(
    TASKS,
    summary="Your tasks, newest first: page_num, page_size, filter.status, filter.model, filter.task_ids",
    response_model=TaskList,
    responses=_errors(400),
)
async def list_tasks(
    request: Request,
    rt: RuntimeDep,
    caller: CallerDep,
    page_num: Annotated[str | None, Query(max_length=8)] = None,
    page_size: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    query = request.query_params
    status = query.get("filter.status") or None
    if status is not None and status not in fmt.STATUSES:
        raise InvalidRequest(
            f"the parameter `filter.status` must be one of {', '.join(fmt.STATUSES)}", param="filter.status"
        )
    model = query.get("filter.model") or None
    ids = query.getlist("filter.task_ids")
    if len(ids) > service.TASK_IDS_MAX or (model is not None and len(model) > 64):
        raise InvalidRequest(f"at most {service.TASK_IDS_MAX} task ids, model names up to 64 characters")
    body = await service.list_page(
        rt,
        caller,
        page_num=_page("page_num", page_num, 1, service.PAGE_NUM_MAX),
        page_size=_page("page_size", page_size, service.PAGE_SIZE_DEFAULT, service.PAGE_SIZE_MAX),
        status=status,
        model=model,
        task_ids=ids,
    )
    return Response(body, media_type=JSON)


@tasks.get(TASKS + "/{task_id}", summary="One task", response_model=TaskBody, responses=_errors(404))
async def get_task(task_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    task = await service.get_task(rt, caller, task_id)
    return Response(task.body, media_type=JSON)


@tasks.delete(
    TASKS + "/{task_id}",
    summary="Cancel a queued task (its hold released) or delete a finished one (its media gone)",
    responses={200: {"description": "Done: {}"}, **_errors(404, 409)},
)
async def delete_task(task_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    await service.delete(rt, caller, task_id)
    return Response(b"{}", media_type=JSON)


router = APIRouter()
for _prefix in (ARK_TASKS.prefix, *ARK_TASKS.aliases):
    router.include_router(tasks, prefix=_prefix)
