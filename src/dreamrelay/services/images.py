"""Customer images (URL, data URI or bare base64): fetched safely, checked by content, stored by us."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import TYPE_CHECKING

import anyio

from dreamrelay.domain.errors import InvalidRequest, PayloadTooLarge, StorageUnavailable
from dreamrelay.media.probe import MediaError, image_size, sniff_image
from dreamrelay.media.storage import StorageError
from dreamrelay.netguard import FetchError, UnsafeURL, check_url_syntax, fetch_bytes

if TYPE_CHECKING:
    from dreamrelay.runtime import Runtime

_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[\w-]+=[\w.-]+)*;base64,", re.IGNORECASE)
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}


UPLOADS = "uploads/"  # POST /luma/generations/file_upload keeps its files under this prefix
UPLOAD_KEY = re.compile(r"^uploads/[0-9a-f]{32}\.(jpg|png)$")
EXTENSION_TYPES = {"jpg": "image/jpeg", "png": "image/png"}


async def load_image(rt: Runtime, field: str, value: str) -> tuple[bytes, str]:
    """The bytes and media type of the image `value` names or carries: an http(s) URL (fetched through
    netguard), one of our own uploads (read from storage), a data URI or bare base64. Checked by
    content: JPEG or PNG, within the size limit, decodable."""
    limit = rt.settings.max_image_bytes
    text = value.strip()
    own_upload = f"{rt.media_base_url}/{UPLOADS}"
    if text.startswith(own_upload):
        data = await read_upload(rt, field, text.removeprefix(f"{rt.media_base_url}/"), limit)
    elif text.lower().startswith(("http://", "https://")):
        data = await _download(rt, field, text, limit)
    else:
        data = _decode_base64(field, text, limit)
    return data, await check_image(field, data, limit)


async def check_image(field: str, data: bytes, limit: int) -> str:
    """The media type of `data` if it is a JPEG or PNG within `limit` bytes that decodes."""
    if len(data) > limit:
        raise PayloadTooLarge(f"{field}: image is larger than {limit} bytes")
    media_type = sniff_image(data)
    if media_type is None:
        raise InvalidRequest(f"{field}: only JPEG and PNG images are accepted (checked by content)")
    try:
        await anyio.to_thread.run_sync(image_size, data)
    except MediaError as exc:
        raise InvalidRequest(f"{field}: the image cannot be decoded ({exc})") from exc
    return media_type


async def read_upload(rt: Runtime, field: str, key: str, limit: int) -> bytes:
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


async def store_image(rt: Runtime, field: str, value: str) -> str:
    """Return the URL of our stored copy of the image `value` names or carries."""
    data, media_type = await load_image(rt, field, value)
    key = f"inputs/{uuid.uuid4()}.{_EXTENSIONS[media_type]}"
    try:
        await rt.storage.put_bytes(key, data)
    except StorageError as exc:
        raise StorageUnavailable(f"{field}: the image could not be stored; try again shortly") from exc
    return f"{rt.media_base_url}/{key}"


async def _download(rt: Runtime, field: str, url: str, limit: int) -> bytes:
    try:
        check_url_syntax(url, rt.url_policy)
        data, _content_type = await fetch_bytes(rt.guarded_session, url, rt.url_policy, max_bytes=limit)
    except UnsafeURL as exc:
        raise InvalidRequest(f"{field}: {exc}") from exc
    except FetchError as exc:
        if exc.too_large:
            raise PayloadTooLarge(f"{field}: image is larger than {limit} bytes") from exc
        raise InvalidRequest(f"{field}: the image could not be fetched ({exc})") from exc
    return data


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
