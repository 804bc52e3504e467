"""multipart/form-data bodies read within bounds, as they arrive: text fields and file parts.

The body is parsed as it arrives (python-multipart through starlette's streaming parser), one received
chunk at a time, so the event loop is never held for longer than one chunk's work; a file part is
spooled to a temporary file past 1 MB by a thread. A body of more parts than the route takes is refused
at the first part too many, before the rest of it is read (issue 26 item 3: 100,000 tiny parts used to
hold the loop for 13 s). Every multipart route reads its body here.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from dreamrelay.domain.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class Bounds:
    files: int  # file parts (parts with a filename)
    fields: int  # text parts
    field_bytes: int  # one text part's value


@dataclass(frozen=True, slots=True)
class FilePart:
    data: bytes
    content_type: str
    filename: str | None


async def read(request: Request, bounds: Bounds) -> tuple[dict[str, str], dict[str, FilePart]]:
    """The text fields and the file parts of the request's multipart body, the first of each name. A
    malformed body, one over `bounds` or a text field with a NUL is an InvalidRequest (400) in the
    route's family shape."""
    parser = MultiPartParser(
        request.headers,
        request.stream(),
        max_files=bounds.files,
        max_fields=bounds.fields,
        max_part_size=bounds.field_bytes,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"the multipart body cannot be read: {exc.message}") from None
    fields: dict[str, str] = {}
    files: dict[str, FilePart] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, str):
                if "\0" in value:
                    raise InvalidRequest(f"{name[:64]}: must not contain NUL characters", param=name[:64])
                fields.setdefault(name, value)
            elif name not in files:
                content_type = value.content_type or "application/octet-stream"
                files[name] = FilePart(await value.read(), content_type, (value.filename or "")[:255] or None)
        return fields, files
    finally:
        await form.close()
