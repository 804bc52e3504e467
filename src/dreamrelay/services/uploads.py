"""Pre-uploaded images (POST /luma/generations/file_upload): a slot in our own media store, a signed
expiring URL to PUT the file to, and the public URL that works as `image_url` afterwards.

With S3 storage the upload URL is the bucket's own presigned PUT; with local storage DreamRelay serves
it (`PUT /media/uploads/<id>.<ext>?expires=…&signature=…`, an HMAC with a secret kept in the data
directory, so every process of the host accepts it).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from dreamrelay.domain.errors import Forbidden, InvalidRequest, StorageUnavailable
from dreamrelay.domain.ids import ascii_int, is_ascii_token
from dreamrelay.media.storage import StorageError
from dreamrelay.services import images
from dreamrelay.services.images import EXTENSION_TYPES, UPLOAD_KEY, UPLOADS, check_image, load_image

Collaborators = images.Collaborators  # its images are checked and kept the same way

UPLOAD_URL_SECONDS = 900  # how long an upload URL can be used
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}


async def file_upload(rt: Collaborators, url: str | None, filename: str | None) -> dict[str, Any]:
    """A new upload slot; with `url` (http(s) or data URI) its image is fetched and stored at once."""
    if url:
        data, media_type = await load_image(rt, "url", url)
        extension = _EXTENSIONS[media_type]
    else:
        data, extension = None, _extension_of(filename or "file.jpg")
    upload_id = uuid.uuid4().hex
    key = f"{UPLOADS}{upload_id}.{extension}"
    try:
        if data is not None:
            await rt.storage.put_bytes(key, data)
        presigned = await rt.storage.presign_upload(key, UPLOAD_URL_SECONDS)
    except StorageError as exc:
        raise StorageUnavailable("media storage is unreachable; try again shortly") from exc
    if presigned is None:
        expires = int(time.time()) + UPLOAD_URL_SECONDS
        query = urlencode({"expires": expires, "signature": _signature(rt, key, expires)})
        presigned = f"{rt.media_base_url}/{key}?{query}"
    return {"id": upload_id, "presigned_url": presigned, "public_url": f"{rt.media_base_url}/{key}"}


def check_upload_url(rt: Collaborators, key: str, expires: str, signature: str) -> None:
    """A signed upload URL's signature and expiry hold (checked before its body is read, and again
    by `put_upload`)."""
    expiry = ascii_int(expires, max_digits=12)
    if not UPLOAD_KEY.match(key) or expiry is None or not is_ascii_token(signature):
        raise Forbidden("not a valid upload URL")
    if not hmac.compare_digest(signature, _signature(rt, key, expiry)):
        raise Forbidden("the upload URL's signature does not match")
    if expiry < time.time():
        raise Forbidden("the upload URL has expired; ask for a new one")


async def put_upload(rt: Collaborators, key: str, expires: str, signature: str, data: bytes) -> None:
    """Store a PUT to a signed upload URL: the signature and expiry hold, and the file is an image of
    the slot's type."""
    check_upload_url(rt, key, expires, signature)
    media_type = await check_image(rt, "body", data)
    if EXTENSION_TYPES[key.rsplit(".", 1)[1]] != media_type:
        raise InvalidRequest(f"body: this upload URL takes a {EXTENSION_TYPES[key.rsplit('.', 1)[1]]} file")
    try:
        await rt.storage.put_bytes(key, data)
    except StorageError as exc:
        raise StorageUnavailable("media storage is unreachable; try again shortly") from exc


def _extension_of(filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    extension = "jpg" if extension == "jpeg" else extension
    if extension not in EXTENSION_TYPES:
        raise InvalidRequest("filename: only .jpg, .jpeg and .png files can be uploaded")
    return extension


def _signature(rt: Collaborators, key: str, expires: int) -> str:
    message = f"PUT\n{key}\n{expires}".encode()
    return hmac.new(_secret(rt.settings.data_dir), message, hashlib.sha256).hexdigest()


_SECRETS: dict[Path, bytes] = {}


def _secret(data_dir: Path) -> bytes:
    """The upload-signing secret of this data directory, made (0600, atomically) on first need."""
    path = (data_dir / "upload_secret").resolve()
    if path not in _SECRETS:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".upload_secret-{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
            try:
                os.link(tmp, path)  # the first process to make it wins; others read theirs
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        _SECRETS[path] = path.read_text().strip().encode()
    return _SECRETS[path]
