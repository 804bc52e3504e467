"""Luma's Agents API under /agents/v1: generations and the Files API, for the unchanged luma-agents SDK.

Thin handlers over services/agents.py (generations) and services/agent_files.py (files). Every answer,
errors included, carries X-API-Version; errors are `{"detail"}` with the status the SDK maps to its
exception classes (http/errors.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from dreamrelay.domain.agent_file import AgentFile
from dreamrelay.domain.errors import InvalidRequest
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.formats.agents import API_VERSION, file_object
from dreamrelay.formats.families import AGENTS
from dreamrelay.http.deps import CallerDep, RuntimeDep, json_body_doc, parse_body, parse_submission
from dreamrelay.http.forms import upload_form
from dreamrelay.http.schemas.agents import (
    CreateFileResponse,
    File,
    FileCreate,
    FileList,
    Generation,
    GenerationCreate,
)
from dreamrelay.services import agent_files, agents, reads
from dreamrelay.services.agent_files import Declared

router = APIRouter(prefix=AGENTS.prefix, tags=["Agents API"])

JSON = "application/json"
HEADERS = {"X-API-Version": API_VERSION}


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type=JSON, headers=HEADERS)


@router.post(
    "/generations",
    summary="Create a generation (Ray 3.2 video, Uni-1 image)",
    openapi_extra=json_body_doc(GenerationCreate),
    responses={201: {"model": Generation, "description": "Created; poll it"}},
    status_code=201,
)
async def create_generation(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    body, idem = await parse_submission(request, GenerationCreate, "agents.generations")
    task = await agents.create(rt, caller, body.to_input(), idem)
    return Response(task.body, status_code=201, media_type=JSON, headers=HEADERS)


@router.get("/generations/{generation_id}", summary="One generation", response_model=Generation)
async def get_generation(generation_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    return Response(await reads.get_agents_body(rt, caller, generation_id), media_type=JSON, headers=HEADERS)


@router.post(
    "/files",
    summary="Upload a file: multipart (inline) or JSON (presigned PUT, then complete)",
    responses={201: {"model": CreateFileResponse, "description": "Created"}},
    status_code=201,
)
async def create_file(request: Request, rt: RuntimeDep, caller: CallerDep) -> Response:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        fields, data, filename = await upload_form(request)
        declared = Declared(
            mime_type="",
            size_bytes=len(data),
            purpose=fields.get("purpose") or "input",
            filename=(fields.get("filename") or filename or "")[:255] or None,
            user_id=fields.get("user_id"),
            expires_at=_timestamp(fields.get("expires_at")),
        )
        row = await agent_files.create_inline(rt, caller, data, declared)
        return _json(_created(row, None), 201)
    body = await parse_body(request, FileCreate)
    declared = Declared(
        mime_type=body.mime_type,
        size_bytes=body.size_bytes,
        purpose=body.purpose,
        filename=body.filename,
        user_id=body.user_id,
        expires_at=_timestamp(body.expires_at),
    )
    row, token = await agent_files.create_presigned(rt, caller, declared)
    return _json(_created(row, agent_files.upload_envelope(rt, row, token)), 201)


@router.get("/files", summary="The caller's files, newest first", response_model=FileList)
async def list_files(
    rt: RuntimeDep,
    caller: CallerDep,
    cursor: str | None = Query(default=None, max_length=200),
    limit: int | None = Query(default=None),
    purpose: str | None = Query(default=None, max_length=16),
    state: str | None = Query(default=None, max_length=16),
) -> Response:
    page = await agent_files.page(rt, caller, cursor=cursor, limit=limit, purpose=purpose, state=state)
    rows = [file_object(file) for file in page.files]
    return _json({"data": rows, "has_more": page.has_more, "next_cursor": page.next_cursor})


@router.get("/files/{file_id}", summary="One file", response_model=File)
async def get_file(file_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    return _json(file_object(await agent_files.get(rt, caller, file_id)))


@router.delete("/files/{file_id}", summary="Delete a file (it can no longer be used)", status_code=204)
async def delete_file(file_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    await agent_files.delete(rt, caller, file_id)
    return Response(status_code=204, headers=HEADERS)


@router.post("/files/{file_id}/complete", summary="Finish a presigned upload", response_model=File)
async def complete_file(file_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    return _json(file_object(await agent_files.complete(rt, caller, file_id)))


@router.put("/uploads/{file_id}", summary="The presigned upload URL (its token is the credential)")
async def upload(
    file_id: str, request: Request, rt: RuntimeDep, token: str = Query(min_length=1, max_length=100)
) -> Response:
    target = await agent_files.upload_target(rt, file_id[:64], token)  # before any of the body is read
    await agent_files.receive_upload(rt, target, await request.body())
    return Response(status_code=200, headers=HEADERS)


def _created(file: AgentFile, upload: JsonObject | None) -> JsonObject:
    return {"id": file.id, "state": file.state, "file": file_object(file), "upload": upload}


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise InvalidRequest("expires_at must be an ISO 8601 time") from exc
