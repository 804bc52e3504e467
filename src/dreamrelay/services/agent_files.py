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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from dreamrelay.domain import ranges
from dreamrelay.domain.agent_file import AgentFile, FilePage
from dreamrelay.domain.errors import InvalidRequest, NotFound, PayloadTooLarge, StorageUnavailable
from dreamrelay.domain.ids import is_ascii_token, is_id
from dreamrelay.formats.own import iso_millis
from dreamrelay.media import probe
from dreamrelay.media.storage import StorageError, scratch_copy
from dreamrelay.services import images
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
    image_decodes: anyio.CapacityLimiter  # the one bound on image decodes (services/images.py)

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
    if declared.expires_at is not None:
        # Shown back as an ISO time: one past 9999-12-31T23:59:59Z (a negative UTC offset in the year
        # 9999) could be stored but never written out again.
        ranges.timestamp("expires_at", declared.expires_at)
        if declared.expires_at <= time.time():
            raise InvalidRequest("expires_at must be in the future")


async def checked_media_type(rt: Collaborators, data: bytes) -> str:
    """The type the bytes really are (JPEG, PNG or MP4 video), or 400. Images take the same bounded
    decode as every other image intake (`images.decoded_size`: header first, few at once)."""
    image_type = probe.sniff_image(data)
    if image_type is not None:
        try:
            await images.decoded_size(rt, data)
        except probe.MediaError as exc:
            raise InvalidRequest(f"the image cannot be decoded ({exc})") from exc
        return image_type
    if data[4:8] != b"ftyp":
        raise InvalidRequest("only JPEG, PNG and MP4 files are accepted (checked by content)")
    return await _checked_video(data)


async def checked_file_type(rt: Collaborators, path: Path) -> str:
    """`checked_media_type` of a file on disk: a video is probed there (never read into memory), an
    image read only when it is within the image size limit."""
    size, head = await anyio.to_thread.run_sync(_size_and_head, path)
    if probe.sniff_image(head) is not None:
        if size > rt.settings.max_image_bytes:
            raise InvalidRequest(f"images may be at most {rt.settings.max_image_bytes} bytes")
        return await checked_media_type(rt, await anyio.Path(path).read_bytes())
    if head[4:8] != b"ftyp":
        raise InvalidRequest("only JPEG, PNG and MP4 files are accepted (checked by content)")
    return await _checked_video(path)


def _size_and_head(path: Path) -> tuple[int, bytes]:
    with path.open("rb") as handle:
        return path.stat().st_size, handle.read(16)


async def _checked_video(source: bytes | Path) -> str:
    try:
        info = await probe.probe_video_off_loop(source)
    except probe.MediaError as exc:
        raise InvalidRequest(f"the video cannot be decoded ({exc})") from exc
    if info.duration > MAX_VIDEO_SECONDS:
        raise InvalidRequest(f"videos may be at most {MAX_VIDEO_SECONDS:.0f} s long")
    return "video/mp4"


FILES = "files/"
# A presigned PUT's bytes wait here, unchecked, until `complete`: no media type is served for this
# ending (media/storage.py::media_type), so nothing a customer PUT is ever served before it is checked.
STAGED = ".staged"


def served_key(file_id: str, media_type: str) -> str:
    """Where a ready file's checked bytes are kept and served (/media/files/<id>.<ext>)."""
    return f"{FILES}{file_id}.{({**IMAGE_TYPES, **VIDEO_TYPES})[media_type]}"


async def _store(rt: Collaborators, key: str, data: bytes) -> str:
    try:
        await rt.storage.put_bytes(key, data)
    except StorageError as exc:
        raise StorageUnavailable("the file could not be stored; try again shortly") from exc
    return key


async def create_inline(rt: Collaborators, caller: Caller, data: bytes, declared: Declared) -> AgentFile:
    """Multipart upload: the bytes are here, checked and stored at once (the file is ready)."""
    media_type = await checked_media_type(rt, data)
    _check_declared(
        rt,
        Declared(
            media_type, len(data), declared.purpose, declared.filename, declared.user_id, declared.expires_at
        ),
    )
    file_id = str(uuid.uuid4())
    key = await _store(rt, served_key(file_id, media_type), data)
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


async def upload_target(rt: Collaborators, file_id: str, token: str) -> AgentFile:
    """The pending file a presigned PUT goes to: the token is the credential (no API key), good until
    the file completes. Checked before the PUT's body is read."""
    async with rt.db.reader() as conn:
        row = await _pending_by_token(conn, file_id, token)
    if row is None or (row.upload_expires_at or 0) < time.time():
        raise NotFound("upload URL not found or expired")
    return row


async def receive_upload(rt: Collaborators, row: AgentFile, data: bytes) -> None:
    """The presigned PUT's bytes, to the file `upload_target` found."""
    if len(data) != row.size_bytes:
        raise InvalidRequest(f"this upload takes exactly {row.size_bytes} bytes; {len(data)} came")
    key = await _store(rt, served_key(row.id, row.mime_type) + STAGED, data)
    async with rt.db.transaction() as conn:
        await file_store.update_file(conn, row.id, "pending", {"storage_key": key})


async def _pending_by_token(conn: AsyncConnection, file_id: str, token: str) -> AgentFile | None:
    row = await file_store.get_pending(conn, file_id)
    if row is None or row.upload_token is None or not is_ascii_token(token):
        return None
    if not secrets.compare_digest(row.upload_token, token):
        return None
    return row


async def complete(rt: Collaborators, caller: Caller, file_id: str) -> AgentFile:
    """After the PUT: check the staged bytes by content. Ready: they move to the served key. Failed
    (with a reason): they are removed, so what was refused is never served."""
    row = await get(rt, caller, file_id)
    if row.state != "pending":
        return row  # completing twice answers the file as it is
    if row.storage_key is None:
        raise InvalidRequest("nothing was uploaded to this file's upload URL yet")
    staged = row.storage_key
    values: dict[str, Any] = {"upload_token": None}
    try:
        async with scratch_copy(rt.storage, staged) as path:  # a video is never read into memory
            if path is None:
                raise InvalidRequest("nothing was uploaded to this file's upload URL yet")
            try:
                media_type = await checked_file_type(rt, path)
                if media_type != row.mime_type:
                    raise InvalidRequest(f"the bytes are {media_type}, not the declared {row.mime_type}")
            except InvalidRequest as exc:
                values.update(state="failed", failure_reason=exc.message, storage_key=None)
            else:
                values.update(state="ready", storage_key=served_key(file_id, media_type))
                if values["storage_key"] != staged:
                    await rt.storage.put_file(values["storage_key"], path)
    except StorageError as exc:
        raise StorageUnavailable("the file could not be read back; try again shortly") from exc
    async with rt.db.transaction() as conn:
        await file_store.update_file(conn, file_id, "pending", values)
    if values["storage_key"] != staged:
        await _remove(rt, [staged])
    return await get(rt, caller, file_id)


async def _remove(rt: Collaborators, keys: list[str]) -> None:
    try:
        await rt.storage.delete(keys)
    except (StorageError, ValueError) as exc:
        raise StorageUnavailable("the file's bytes could not be removed; try again shortly") from exc


async def get(rt: Collaborators, caller: Caller, file_id: str) -> AgentFile:
    async with rt.db.reader() as conn:
        row = await file_store.get_file(conn, file_id, caller.account_id) if len(file_id) <= 64 else None
    if row is None:
        raise NotFound(f"file {file_id[:64]} not found")
    return row


async def delete(rt: Collaborators, caller: Caller, file_id: str) -> None:
    """The file can no longer be used and its bytes are gone (as a deleted task's media); GET still
    shows it as deleted. Deleting again retries a removal the store refused."""
    row = await get(rt, caller, file_id)
    if row.state != "deleted":
        values = {"state": "deleted", "deleted_at": time.time(), "upload_token": None}
        async with rt.db.transaction() as conn:
            await file_store.update_file(conn, file_id, row.state, values)
    served = served_key(file_id, row.mime_type)
    await _remove(rt, sorted({served, served + STAGED, row.storage_key or served}))


async def servable(rt: Collaborators, key: str) -> bool:
    """Whether /media may serve `key`: anything outside files/ is not the Files API's business; a file's
    bytes are served only while it is ready (not pending, failed, deleted or expired)."""
    if not key.startswith(FILES):
        return True
    file_id = key[len(FILES) :].split(".", 1)[0]
    async with rt.db.reader() as conn:
        row = await file_store.get_any(conn, file_id) if is_id(file_id) else None
    expired = row is not None and row.expires_at is not None and row.expires_at <= time.time()
    return row is not None and row.state == "ready" and row.storage_key == key and not expired


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
