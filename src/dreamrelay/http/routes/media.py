"""Our stored media at stable URLs (/media/<key>), whatever the storage behind them.

`proxy` (default): we stream the object ourselves, with single byte ranges for video players.
`presign`: we answer with a redirect to a short-lived presigned URL of the bucket, so the bytes
never pass through us; the URL in the task object stays ours and never expires.
"""

from __future__ import annotations

from email.utils import formatdate
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from dreamrelay.domain.errors import NotFound, RangeNotSatisfiable, StorageUnavailable
from dreamrelay.domain.ids import ascii_int
from dreamrelay.http.deps import RuntimeDep
from dreamrelay.media.storage import StorageError, media_type
from dreamrelay.runtime import Runtime
from dreamrelay.services import agent_files, uploads

router = APIRouter(tags=["media"])

# A key never changes content once written, but its task may be deleted, and then it is gone: only the
# viewer's own cache may keep it (no shared cache or CDN), and not for long; the ETag makes a
# revalidation after that a cheap 304.
MEDIA_CACHE = "private, max-age=600"


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_MEDIA_TYPES = ("video/mp4", "image/jpeg", "image/png")


@router.put(
    "/media/uploads/{name}",
    summary="Upload a file to a signed upload URL from POST /luma/generations/file_upload",
    status_code=200,
    responses={200: {"description": "Stored"}},
    openapi_extra={
        "requestBody": {"required": True, "content": dict.fromkeys(("image/jpeg", "image/png"), _BINARY)}
    },
)
async def upload_file(
    name: str,
    request: Request,
    rt: RuntimeDep,
    expires: Annotated[str, Query(max_length=12)] = "",
    signature: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The signature is the credential (as with a bucket's presigned PUT): no Bearer key."""
    key = f"uploads/{name}"
    uploads.check_upload_url(rt, key, expires, signature)  # before any of the body is read
    await uploads.put_upload(rt, key, expires, signature, await request.body())
    return Response(status_code=200)


@router.get(
    "/media/{key:path}",
    summary="A stored media file (byte ranges, or a redirect when presigning)",
    response_class=Response,
    responses={
        200: {"description": "The file", "content": dict.fromkeys(_MEDIA_TYPES, _BINARY)},
        206: {"description": "One byte range of the file", "content": dict.fromkeys(_MEDIA_TYPES, _BINARY)},
        304: {"description": "Not modified (If-None-Match)"},
        307: {"description": "Presigned URL of the object (DREAMRELAY_MEDIA_SERVE=presign)"},
    },
)
@router.head("/media/{key:path}", include_in_schema=False)
async def media_file(key: str, request: Request, rt: RuntimeDep) -> Response:
    # Files API uploads are served only once checked and ready (never pending, failed or deleted).
    return await serve(rt, key, request, servable=await agent_files.servable(rt, key))


async def serve(rt: Runtime, key: str, request: Request, *, servable: bool = True) -> Response:
    """The stored object `key` as GET or HEAD `request` asks for it (ranges, ETag, presigned redirect)."""
    content_type = media_type(key) if servable else None
    seconds = rt.settings.media_presign_seconds
    try:
        info = await rt.storage.stat(key) if content_type else None
        presigned = None
        if info is not None and rt.settings.media_serve == "presign":
            presigned = await rt.storage.presign(key, seconds)
    except StorageError as exc:
        raise StorageUnavailable("media storage is unreachable; try again shortly") from exc
    if content_type is None or info is None:
        raise NotFound("no such media file")
    if presigned is not None:
        # The signed URL expires: a client may keep the redirect for half its life, not more.
        cache = {"Cache-Control": f"private, max-age={seconds // 2}"}
        return RedirectResponse(presigned, status_code=307, headers=cache)
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": MEDIA_CACHE,
        "ETag": info.etag,
        "Last-Modified": formatdate(info.modified, usegmt=True),
    }
    if {info.etag, "*"} & _etags(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range not in (info.etag, headers["Last-Modified"]):
        wanted = None  # the client's copy is another version: send the whole object
    status, (start, end) = 200, (0, info.size)
    chosen = byte_range(wanted, info.size)
    if chosen is not None:
        status, (start, end) = 206, chosen
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=content_type)
    body = rt.storage.stream(key, start, end)
    return StreamingResponse(body, status_code=status, headers=headers, media_type=content_type)


def _etags(header: str | None) -> set[str]:
    if not header:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) to send for a Range header; None: send the whole object. Only one `bytes=` range
    is honoured; anything else (other units, several ranges, malformed) is ignored, as RFC 9110
    allows. A well-formed range that misses the object is refused with 416."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    first, dash, last = spec.strip().partition("-")
    if unit.strip().lower() != "bytes" or not dash or "," in spec:
        return None
    start, stop = ascii_int(first.strip()), ascii_int(last.strip())
    if (first.strip() and start is None) or (last.strip() and stop is None) or start is stop is None:
        return None
    if start is None:  # the last N bytes
        assert stop is not None
        if stop == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(size - stop, 0), size
    if start >= size:
        raise _unsatisfiable(size)
    end = stop + 1 if stop is not None else size
    if end <= start:  # last before first: not a valid range
        return None
    return start, min(end, size)


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        f"the requested range is outside the file ({size} bytes)",
        headers={"Content-Range": f"bytes */{size}"},
    )
