"""Our stored media at stable URLs (/media/<key>), with Range support for video players."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from dreamrelay.domain.errors import NotFound
from dreamrelay.http.deps import RuntimeDep

router = APIRouter(tags=["media"])

_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".png": "image/png"}


@router.get(
    "/media/{key:path}",
    summary="A stored media file",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The file (Range requests supported)",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in _TYPES.values()},
        }
    },
)
async def media_file(key: str, rt: RuntimeDep) -> FileResponse:
    path = rt.storage.local_path(key)
    if path is None or path.suffix not in _TYPES:
        raise NotFound("no such media file")
    # A key never changes content once written: cache it for good.
    headers = {"Cache-Control": "public, max-age=31536000, immutable"}
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=headers)
