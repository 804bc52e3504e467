"""The Agents API's Files API: inline and presigned uploads into our media store, checked by content.

A file belongs to the account that uploaded it; every read, use and delete checks the owner, and an
id of another account answers exactly like one that does not exist. Bytes are checked by content
(JPEG, PNG, or an MP4 with an H.264/H.265 video stream) whatever the declared type says, and a
presigned PUT must deliver exactly the declared size.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from dreamrelay.domain.agent_file import AgentFile, FilePage
from dreamrelay.domain.errors import InvalidRequest, NotFound, PayloadTooLarge, StorageUnavailable
from dreamrelay.formats.own import iso_millis
from dreamrelay.media import probe
from dreamrelay.media.storage import StorageError
from dreamrelay.services.auth import Caller
from dreamrelay.store import agent_files as file_store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from dreamrelay.media.storage import Storage
    from dreamrelay.settings import Settings
    from dreamrelay.store.engine import Database


class Collaborators(Protocol):
    db: Database
    storage: Storage  # the files' bytes
    settings: Settings  # size limits, our public URL (upload URLs)

    @property
    def media_base_url(self) -> str: ...


PURPOSES = ("input", "reference")
STATES = ("pending", "ready", "failed", "deleted")
IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png"}
VIDEO_TYPES = {"video/mp4": "mp4"}
MAX_VIDEO_BYTES = 100 * 1024 * 1024  # a Ray 3.2 edit source is at most 18 s
MAX_VIDEO_SECONDS = 60.0
UPLOAD_URL_SECONDS = 3600
FILENAME_MAX_CHARS = 255
USER_ID_MAX_CHARS = 255
LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 25, 100


@dataclass(frozen=True)
class Declared:
    """What a presigned upload promises to PUT."""

    mime_type: str
    size_bytes: int
    purpose: str = "input"
    filename: str | None = None
    user_id: str | None = None
    expires_at: float | None = None


def max_bytes(rt: Collaborators, mime_type: str) -> int:
    """Images as large as any image input; videos as large as a request body may be (the PUT is one)."""
    if mime_type in VIDEO_TYPES:
        return min(MAX_VIDEO_BYTES, rt.settings.max_body_bytes)
    return rt.settings.max_image_bytes


def _check_declared(rt: Collaborators, declared: Declared) -> None:
    if declared.mime_type not in IMAGE_TYPES and declared.mime_type not in VIDEO_TYPES:
        raise InvalidRequest("mime_type must be image/jpeg, image/png or video/mp4")
    if declared.purpose not in PURPOSES:
        raise InvalidRequest("purpose must be input or reference")
    limit = max_bytes(rt, declared.mime_type)
    if not 1 <= declared.size_bytes <= limit:
        raise PayloadTooLarge(f"size_bytes must be 1 to {limit} for {declared.mime_type}")
    if declared.filename is not None and len(declared.filename) > FILENAME_MAX_CHARS:
        raise InvalidRequest(f"filename must be at most {FILENAME_MAX_CHARS} characters")
    if declared.user_id is not None and len(declared.user_id) > USER_ID_MAX_CHARS:
        raise InvalidRequest(f"user_id must be at most {USER_ID_MAX_CHARS} characters")
    if declared.expires_at is not None and declared.expires_at <= time.time():
        raise InvalidRequest("expires_at must be in the future")


async def checked_media_type(data: bytes) -> str:
    """The type the bytes really are (JPEG, PNG or MP4 video), or 400."""
    image_type = probe.sniff_image(data)
    if image_type is not None:
        try:
            await anyio.to_thread.run_sync(probe.image_size, data)
        except probe.MediaError as exc:
            raise InvalidRequest(f"the image cannot be decoded ({exc})") from exc
        return image_type
    if data[4:8] != b"ftyp":
        raise InvalidRequest("only JPEG, PNG and MP4 files are accepted (checked by content)")
    try:
        info = await anyio.to_thread.run_sync(probe.probe_video_bytes, data)
    except probe.MediaError as exc:
        raise InvalidRequest(f"the video cannot be decoded ({exc})") from exc
    if info.duration > MAX_VIDEO_SECONDS:
        raise InvalidRequest(f"videos may be at most {MAX_VIDEO_SECONDS:.0f} s long")
    return "video/mp4"


async def _store(rt: Collaborators, file_id: str, media_type: str, data: bytes) -> str:
    extension = {**IMAGE_TYPES, **VIDEO_TYPES}[media_type]
    key = f"files/{file_id}.{extension}"
    try:
        await rt.storage.put_bytes(key, data)
    except StorageError as exc:
        raise StorageUnavailable("the file could not be stored; try again shortly") from exc
    return key


async def create_inline(rt: Collaborators, caller: Caller, data: bytes, declared: Declared) -> AgentFile:
    """Multipart upload: the bytes are here, checked and stored at once (the file is ready)."""
    media_type = await checked_media_type(data)
    _check_declared(
        rt,
        Declared(
            media_type, len(data), declared.purpose, declared.filename, declared.user_id, declared.expires_at
        ),
    )
    file_id = str(uuid.uuid4())
    key = await _store(rt, file_id, media_type, data)
    file = _new(file_id, caller, declared, mime_type=media_type, size_bytes=len(data))
    file = replace(file, state="ready", storage_key=key)
    async with rt.db.transaction() as conn:
        await file_store.insert_file(conn, file)
    return file


async def create_presigned(rt: Collaborators, caller: Caller, declared: Declared) -> tuple[AgentFile, str]:
    """JSON upload: a pending file and the secret of its one PUT URL."""
    _check_declared(rt, declared)
    file_id = str(uuid.uuid4())
    token = secrets.token_urlsafe(32)
    file = _new(file_id, caller, declared, mime_type=declared.mime_type, size_bytes=declared.size_bytes)
    file = replace(file, upload_token=token, upload_expires_at=time.time() + UPLOAD_URL_SECONDS)
    async with rt.db.transaction() as conn:
        await file_store.insert_file(conn, file)
    return file, token


def upload_envelope(rt: Collaborators, file: AgentFile, token: str) -> dict[str, Any]:
    return {
        "url": f"{rt.settings.resolved_public_url}/agents/v1/uploads/{file.id}?token={token}",
        "method": "PUT",
        "headers": {"Content-Type": file.mime_type},
        "expires_at": iso_millis(file.upload_expires_at or 0.0),
    }


async def receive_upload(rt: Collaborators, file_id: str, token: str, data: bytes) -> None:
    """The presigned PUT: the token is the credential (no API key), good until the file completes."""
    async with rt.db.reader() as conn:
        row = await _pending_by_token(conn, file_id, token)
    if row is None or (row.upload_expires_at or 0) < time.time():
        raise NotFound("upload URL not found or expired")
    if len(data) != row.size_bytes:
        raise InvalidRequest(f"this upload takes exactly {row.size_bytes} bytes; {len(data)} came")
    key = await _store(rt, file_id, row.mime_type, data)
    async with rt.db.transaction() as conn:
        await file_store.update_file(conn, file_id, "pending", {"storage_key": key})


async def _pending_by_token(conn: AsyncConnection, file_id: str, token: str) -> AgentFile | None:
    row = await file_store.get_pending(conn, file_id)
    if row is None or row.upload_token is None or not secrets.compare_digest(row.upload_token, token):
        return None
    return row


async def complete(rt: Collaborators, caller: Caller, file_id: str) -> AgentFile:
    """After the PUT: check the stored bytes by content; the file is ready, or failed with a reason."""
    row = await get(rt, caller, file_id)
    if row.state != "pending":
        return row  # completing twice answers the file as it is
    if row.storage_key is None:
        raise InvalidRequest("nothing was uploaded to this file's upload URL yet")
    data = await _read(rt, row.storage_key, row.size_bytes)
    values: dict[str, Any] = {"upload_token": None}
    try:
        media_type = await checked_media_type(data)
        if media_type != row.mime_type:
            raise InvalidRequest(f"the bytes are {media_type}, not the declared {row.mime_type}")
        values["state"] = "ready"
    except InvalidRequest as exc:
        values.update(state="failed", failure_reason=exc.message)
    async with rt.db.transaction() as conn:
        await file_store.update_file(conn, file_id, "pending", values)
    return await get(rt, caller, file_id)


async def _read(rt: Collaborators, key: str, size: int) -> bytes:
    try:
        chunks = [chunk async for chunk in rt.storage.stream(key, 0, size)]
    except StorageError as exc:
        raise StorageUnavailable("the file could not be read back; try again shortly") from exc
    return b"".join(chunks)


async def get(rt: Collaborators, caller: Caller, file_id: str) -> AgentFile:
    async with rt.db.reader() as conn:
        row = await file_store.get_file(conn, file_id, caller.account_id) if len(file_id) <= 64 else None
    if row is None:
        raise NotFound(f"file {file_id[:64]} not found")
    return row


async def delete(rt: Collaborators, caller: Caller, file_id: str) -> None:
    """Soft delete: the file can no longer be used; GET shows it as deleted."""
    row = await get(rt, caller, file_id)
    if row.state == "deleted":
        return
    async with rt.db.transaction() as conn:
        await file_store.update_file(
            conn, file_id, row.state, {"state": "deleted", "deleted_at": time.time(), "upload_token": None}
        )


async def usable_url(rt: Collaborators, caller: Caller, file_id: str, field: str) -> tuple[str, str]:
    """(our URL, media type) of a ready file the caller owns; 404 for anything else."""
    async with rt.db.reader() as conn:
        row = await file_store.get_file(conn, file_id, caller.account_id) if len(file_id) <= 64 else None
    expired = row is not None and row.expires_at is not None and row.expires_at <= time.time()
    if row is None or row.state == "deleted" or expired:
        raise NotFound(f"{field}: file {file_id[:64]} not found")
    if row.state != "ready":
        raise InvalidRequest(f"{field}: file {file_id} is {row.state}, not ready")
    return f"{rt.media_base_url}/{row.storage_key}", row.mime_type


async def page(
    rt: Collaborators,
    caller: Caller,
    *,
    cursor: str | None,
    limit: int | None,
    purpose: str | None,
    state: str | None,
) -> FilePage:
    size = LIST_LIMIT_DEFAULT if limit is None else limit
    if not 1 <= size <= LIST_LIMIT_MAX:
        raise InvalidRequest(f"limit must be 1 to {LIST_LIMIT_MAX}")
    if purpose is not None and purpose not in PURPOSES:
        raise InvalidRequest("purpose must be input or reference")
    if state is not None and state not in STATES:
        raise InvalidRequest(f"state must be one of {', '.join(STATES)}")
    after = _decode_cursor(cursor) if cursor else None
    async with rt.db.reader() as conn:
        rows = await file_store.list_files(
            conn, caller.account_id, limit=size, after=after, purpose=purpose, state=state
        )
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = _encode_cursor(rows[-1]) if more else None
    return FilePage(files=rows, has_more=more, next_cursor=next_cursor)


def _encode_cursor(file: AgentFile) -> str:
    return base64.urlsafe_b64encode(f"{file.created_at!r}|{file.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created, file_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return float(created), file_id[:64]
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("cursor is not one this API gave out") from exc


def _new(file_id: str, caller: Caller, declared: Declared, *, mime_type: str, size_bytes: int) -> AgentFile:
    return AgentFile(
        id=file_id,
        account_id=caller.account_id,
        purpose=declared.purpose,
        state="pending",
        mime_type=mime_type,
        size_bytes=size_bytes,
        filename=declared.filename,
        user_id=declared.user_id,
        created_at=time.time(),
        expires_at=declared.expires_at,
    )
