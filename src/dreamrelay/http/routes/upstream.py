"""Where upstreams call us back (the URL carries a per-task secret; no API key)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from dreamrelay.domain.errors import TaskNotFound
from dreamrelay.domain.ids import is_id
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.http.deps import RuntimeDep, read_json
from dreamrelay.services import upstream_callbacks

router = APIRouter(prefix="/upstream", tags=["upstream callbacks"], include_in_schema=False)


@router.post("/callbacks/{task_id}/{token}")
async def upstream_callback(request: Request, rt: RuntimeDep, task_id: str, token: str) -> JsonObject:
    if not (is_id(task_id) and is_id(token)):  # before the body is read or the store asked
        raise TaskNotFound("unknown callback")
    applied = await upstream_callbacks.receive(rt, task_id, token, await read_json(request))
    return {"accepted": applied}
