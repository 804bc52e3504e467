"""Customer images (URL, data URI or bare base64): fetched safely, checked by content, stored by us."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import anyio

from dreamrelay.domain.errors import InvalidRequest, PayloadTooLarge, StorageUnavailable
from dreamrelay.media.probe import (
    MAX_INPUT_PIXELS,
    MAX_INPUT_SIDE,
    MediaError,
    image_size,
    release_memory,
    sniff_image,
)
from dreamrelay.media.storage import StorageError
from dreamrelay.services import customer_urls
from dreamrelay.services.orphans import input_key

if TYPE_CHECKING:
    import aiohttp

    from dreamrelay.media.storage import Storage
    from dreamrelay.netguard import URLPolicy
    from dreamrelay.settings import Settings


class Collaborators(Protocol):
    settings: Settings  # max_image_bytes
    storage: Storage
    url_policy: URLPolicy  # what customer URLs may point at
    image_decodes: anyio.CapacityLimiter  # decodes at once, so big images cannot exhaust memory

    @property
    def guarded_session(self) -> aiohttp.ClientSession: ...

    @property
    def media_base_url(self) -> str: ...


log = logging.getLogger(__name__)
_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[\w-]+=[\w.-]+)*;base64,", re.IGNORECASE)
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}


@dataclass
class TaskInputs:
    """The input images of one task being submitted: named after the task, so the orphan sweep can tell
    whose they are, and removed at once when the task is refused (`kept_for`)."""

    task_id: str
    keys: list[str] = field(default_factory=list)

    def next_key(self, extension: str) -> str:
        key = input_key(self.task_id, len(self.keys), extension)
        self.keys.append(key)
        return key


@contextlib.asynccontextmanager
async def kept_for(rt: Collaborators, task_id: str) -> AsyncIterator[TaskInputs]:
    """Inputs stored in the block stay only if the block ends normally (the task was accepted)."""
    inputs = TaskInputs(task_id)
    try:
        yield inputs
    except BaseException:
        if inputs.keys:
            try:
                await rt.storage.delete(inputs.keys)
            except (StorageError, ValueError) as exc:  # the orphan sweep removes them later
                log.warning(
                    "task %s refused; removing its %d inputs failed: %s", task_id, len(inputs.keys), exc
                )
        raise


UPLOADS = "uploads/"  # POST /luma/generations/file_upload keeps its files under this prefix
UPLOAD_KEY = re.compile(r"^uploads/[0-9a-f]{32}\.(jpg|png)$")
EXTENSION_TYPES = {"jpg": "image/jpeg", "png": "image/png"}


async def load_image(rt: Collaborators, field: str, value: str) -> tuple[bytes, str]:
    """The bytes and media type of the image `value` names or carries: an http(s) URL (fetched through
    netguard), one of our own uploads (read from storage), a data URI or bare base64. Checked by
    content: JPEG or PNG, within the size limit, decodable."""
    limit = rt.settings.max_image_bytes
    text = value.strip()
    if text.startswith(f"{rt.media_base_url}/{UPLOADS}"):
        data = await read_upload(rt, field, text.removeprefix(f"{rt.media_base_url}/"), limit)
    elif text.lower().startswith(("http://", "https://")):
        data = await customer_urls.fetch(
            rt.guarded_session, rt.url_policy, field, text, what="image", limit=limit
        )
    else:
        data = _decode_base64(field, text, limit)
    return data, await check_image(rt, field, data)


async def check_image(rt: Collaborators, field: str, data: bytes) -> str:
    """The media type of `data` if it is a JPEG or PNG within the size limit that decodes."""
    limit = rt.settings.max_image_bytes
    if len(data) > limit:
        raise PayloadTooLarge(f"{field}: image is larger than {limit} bytes")
    media_type = sniff_image(data)
    if media_type is None:
        raise InvalidRequest(f"{field}: only JPEG and PNG images are accepted (checked by content)")
    try:
        await decoded_size(rt, data)
    except MediaError as exc:
        raise InvalidRequest(f"{field}: the image cannot be decoded ({exc})") from exc
    return media_type


class Decodes(Protocol):
    image_decodes: anyio.CapacityLimiter


async def decoded_size(rt: Decodes, data: bytes) -> tuple[int, int]:
    """(width, height) of a customer's image that decodes in full: the one bounded decode every image
    intake uses (own format, Dream Machine, Kling, Agents references, uploads, the Files API).

    Its size is read from the header first (a 7000×7000 PNG of 143 kB is refused undecoded, at most
    MAX_INPUT_SIDE on a side), and only `rt.image_decodes` decodes run at once per process, whatever
    the number of requests: memory is bounded by design, not by the upload's size."""
    return await anyio.to_thread.run_sync(_checked_size, data, limiter=rt.image_decodes)


async def read_upload(rt: Collaborators, field: str, key: str, limit: int) -> bytes:
    """An uploaded file from our own storage (never fetched over HTTP from ourselves)."""
    try:
        info = await rt.storage.stat(key) if UPLOAD_KEY.match(key) else None
        if info is None:
            raise InvalidRequest(f"{field}: no file was uploaded at this URL (yet)")
        if info.size > limit:
            raise PayloadTooLarge(f"{field}: image is larger than {limit} bytes")
        return b"".join([chunk async for chunk in rt.storage.stream(key, 0, info.size)])
    except StorageError as exc:
        raise StorageUnavailable(f"{field}: media storage is unreachable; try again shortly") from exc


async def store_image(rt: Collaborators, field: str, value: str, inputs: TaskInputs | None = None) -> str:
    """Return the URL of our stored copy of the image `value` names or carries (named after the task
    of `inputs` when given)."""
    data, media_type = await load_image(rt, field, value)
    extension = _EXTENSIONS[media_type]
    key = inputs.next_key(extension) if inputs is not None else f"inputs/{uuid.uuid4()}.{extension}"
    try:
        await rt.storage.put_bytes(key, data)
    except StorageError as exc:
        raise StorageUnavailable(f"{field}: the image could not be stored; try again shortly") from exc
    finally:
        del data  # the upload's bytes are the last big buffer: hand the heap back once they are gone
        await anyio.to_thread.run_sync(release_memory, limiter=rt.image_decodes)
    return f"{rt.media_base_url}/{key}"


def _checked_size(data: bytes) -> tuple[int, int]:
    return image_size(data, MAX_INPUT_PIXELS, MAX_INPUT_SIDE)


def _decode_base64(field: str, text: str, limit: int) -> bytes:
    match = _DATA_URI.match(text)
    if match:
        text = text[match.end() :]
    elif text.lower().startswith("data:"):
        raise InvalidRequest(f"{field}: a data URI must be base64 encoded ('data:image/png;base64,...')")
    text = "".join(text.split())
    # 4 base64 characters carry 3 bytes: refuse oversize input before decoding it.
    if len(text) // 4 * 3 - text[-2:].count("=") > limit:
        raise PayloadTooLarge(f"{field}: image is larger than {limit} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"{field}: not an http(s) URL, a data URI or valid base64") from exc
