"""The Agents Files API's inline upload: one `file` part and a few short text fields, read within
bounds by `http/multipart.py`."""

from __future__ import annotations

from starlette.requests import Request

from dreamrelay.domain.errors import InvalidRequest
from dreamrelay.http import multipart

# One `file` part; purpose, filename, user_id, expires_at and room for a client's extras, 4 KiB each.
UPLOAD = multipart.Bounds(files=1, fields=8, field_bytes=4096)


async def upload_form(request: Request) -> tuple[dict[str, str], bytes, str | None]:
    """The text fields, the `file` part's bytes and its filename."""
    fields, files = await multipart.read(request, UPLOAD)
    upload = files.get("file")
    if upload is None or not upload.data:
        raise InvalidRequest("the multipart body needs a non-empty `file` part")
    return fields, upload.data, upload.filename
