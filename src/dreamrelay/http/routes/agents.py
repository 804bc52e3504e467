"""Luma's Agents API under /agents/v1: generations and the Files API, for the unchanged luma-agents SDK.

Thin handlers over services/agents.py (generations) and services/agent_files.py (files). Every answer,
errors included, carries X-API-Version; errors are `{"detail"}` with the status the SDK maps to its
exception classes (http/errors.py).
"""

from __future__ import annotations

from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from dreamrelay.domain.agent_file import AgentFile
from dreamrelay.domain.errors import InvalidRequest
from dreamrelay.formats.agents import API_VERSION, file_object
from dreamrelay.http.deps import CallerDep, RuntimeDep, json_body_doc, parse_body, parse_submission
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

router = APIRouter(prefix="/agents/v1", tags=["Agents API"])

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
        fields, data = _multipart(content_type, await request.body())
        declared = Declared(
            mime_type="",
            size_bytes=len(data),
            purpose=fields.get("purpose") or "input",
            filename=fields.get("filename"),
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
    await agent_files.receive_upload(rt, file_id[:64], token, await request.body())
    return Response(status_code=200, headers=HEADERS)


def _created(file: AgentFile, upload: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": file.id, "state": file.state, "file": file_object(file), "upload": upload}


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise InvalidRequest("expires_at must be an ISO 8601 time") from exc


def _multipart(content_type: str, raw: bytes) -> tuple[dict[str, str], bytes]:
    """The text fields and the `file` part's bytes of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    if not message.is_multipart():
        raise InvalidRequest("the multipart body cannot be read")
    fields: dict[str, str] = {}
    data: bytes | None = None
    for part in message.iter_parts():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        if name == "file":
            data = payload
            if part.get_filename():
                fields.setdefault("filename", str(part.get_filename())[:255])
        elif len(payload) <= 1000:
            fields[name] = payload.decode(errors="replace")
    if not data:
        raise InvalidRequest("the multipart body needs a non-empty `file` part")
    return fields, data
