"""Where DreamRelay keeps media: a local directory, or an S3-compatible bucket through obstore.

Both backends answer the same protocol, so the rest of the code never knows which one it has:
writers put bytes or a file under a key, the /media route asks for an object's size and validator,
streams a byte range of it, or (where the backend can) a short-lived presigned URL.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from stat import S_ISREG
from typing import Protocol

import anyio
import obstore
from obstore.exceptions import BaseError as BaseObstoreError
from obstore.store import S3Store

from dreamrelay import metrics

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
CHUNK_BYTES = 256 * 1024  # what one read of a stream hands to the HTTP response
# A slow viewer may take minutes to read a video through us: stalls end a transfer, else an hour does.
S3_CLIENT = {
    "connect_timeout": timedelta(seconds=5),
    "read_timeout": timedelta(seconds=30),
    "timeout": timedelta(hours=1),
}
S3_RETRY = {"max_retries": 3, "retry_timeout": timedelta(seconds=20)}
MEDIA_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".png": "image/png"}


class StorageError(Exception):
    """The media store failed; counted in dreamrelay_media_storage_errors_total by operation."""

    def __init__(self, message: str, *, operation: str = "other") -> None:
        super().__init__(message)
        self.operation = operation
        metrics.STORAGE_ERRORS.labels(operation).inc()


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str  # a quoted strong validator, as HTTP wants it
    modified: float  # Unix seconds


class Storage(Protocol):
    async def put_bytes(self, key: str, data: bytes) -> None: ...
    async def put_file(self, key: str, source: Path) -> None: ...
    async def stat(self, key: str) -> ObjectInfo | None:
        """The object's size and validator; None when there is no such object (or the key is unsafe)."""
        ...

    def stream(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes [start, end) of an object that `stat` found."""
        ...

    async def presign(self, key: str, expires_seconds: int) -> str | None:
        """A URL that fetches the object without our credentials; None when the backend has none."""
        ...

    async def presign_upload(self, key: str, expires_seconds: int) -> str | None:
        """A URL that PUTs the object without our credentials; None: DreamRelay serves the upload."""
        ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove these objects; keys that do not exist are no error."""
        ...

    def listing(self, prefix: str) -> AsyncIterator[tuple[str, float]]:
        """(key, modified Unix seconds) of every object under `prefix` (a folder, ending in "/")."""
        ...


@contextlib.asynccontextmanager
async def scratch_copy(storage: Storage, key: str) -> AsyncIterator[Path | None]:
    """The object `key` copied to a scratch file for the block (a chunk at a time: never whole in
    memory), removed after it; None when there is no such object."""
    info = await storage.stat(key)
    if info is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="dreamrelay-scratch-") as scratch:
        path = Path(scratch) / PurePosixPath(key).name
        async with await anyio.open_file(path, "wb") as handle:
            async for chunk in storage.stream(key, 0, info.size):
                await handle.write(chunk)
        yield path


def check_key(key: str) -> str:
    """Keys are relative paths of plain segments; '..' and absolute paths cannot pass."""
    if not _SAFE_KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"unsafe media key: {key!r}")
    return key


def media_type(key: str) -> str | None:
    """The Content-Type of a key we serve; None for any other kind of file."""
    return MEDIA_TYPES.get(PurePosixPath(key).suffix)


class LocalStorage:
    """Files under one root directory, written atomically (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _target(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put_bytes(self, key: str, data: bytes) -> None:
        try:
            await anyio.to_thread.run_sync(self._write, self._target(key), data)
        except OSError as exc:
            raise StorageError(f"could not write {key}: {exc}", operation="put") from exc

    async def put_file(self, key: str, source: Path) -> None:
        try:
            await anyio.to_thread.run_sync(self._copy, self._target(key), source)
        except OSError as exc:
            raise StorageError(f"could not write {key}: {exc}", operation="put") from exc

    async def stat(self, key: str) -> ObjectInfo | None:
        try:
            found = await anyio.to_thread.run_sync(os.stat, self._target(key))
        except (ValueError, OSError):
            return None
        if not S_ISREG(found.st_mode):
            return None
        return ObjectInfo(
            size=found.st_size, etag=f'"{found.st_size:x}-{found.st_mtime_ns:x}"', modified=found.st_mtime
        )

    async def stream(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self._target(key), "rb") as handle:
            await handle.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = await handle.read(min(CHUNK_BYTES, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    async def presign(self, key: str, expires_seconds: int) -> str | None:
        return None

    async def presign_upload(self, key: str, expires_seconds: int) -> str | None:
        return None

    async def delete(self, keys: Sequence[str]) -> None:
        try:
            await anyio.to_thread.run_sync(self._unlink, [self._target(k) for k in keys])
        except OSError as exc:
            raise StorageError(f"could not delete {len(keys)} objects: {exc}") from exc

    async def listing(self, prefix: str) -> AsyncIterator[tuple[str, float]]:
        folder = self._target(prefix.rstrip("/"))
        found = await anyio.to_thread.run_sync(self._walk, folder)
        for path, modified in found:
            yield path.relative_to(self.root).as_posix(), modified

    @staticmethod
    def _unlink(paths: list[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    @staticmethod
    def _walk(folder: Path) -> list[tuple[Path, float]]:
        if not folder.is_dir():
            return []
        found = []
        for path in folder.rglob("*"):
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                info = path.stat()
                if S_ISREG(info.st_mode) and not path.name.startswith(".tmp-"):
                    found.append((path, info.st_mtime))
        return found

    @staticmethod
    def _write(target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            # A full disk (or anything else) leaves no partial file behind to hold the space.
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def _copy(target: Path, source: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class S3Storage:
    """Objects in an S3-compatible bucket (AWS, R2, MinIO, Garage, SeaweedFS…), under an optional prefix.

    A put is atomic on S3 (a reader sees the whole object or none); large files go up in parts.
    """

    def __init__(
        self,
        url: str,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        presign_endpoint: str | None = None,
    ) -> None:
        config: dict[str, str] = {}
        if endpoint:
            config["endpoint"] = endpoint
        if region:
            config["region"] = region
        if access_key_id:
            config["access_key_id"] = access_key_id
        if secret_access_key:
            config["secret_access_key"] = secret_access_key
        # Not named in `config`, the rest comes from the usual AWS_* variables or instance credentials.
        self._store = self._open(url, config)
        # Presigned URLs name the host customers reach, which may not be the one we use inside.
        self._signer = (
            self._open(url, {**config, "endpoint": presign_endpoint}) if presign_endpoint else self._store
        )

    @staticmethod
    def _open(url: str, config: dict[str, str]) -> S3Store:
        endpoint = config.get("endpoint", "")
        client = {**S3_CLIENT, "allow_http": endpoint.startswith("http://")}
        return S3Store.from_url(
            url,
            config=config,  # type: ignore[arg-type]
            client_options=client,  # type: ignore[arg-type]
            retry_config=S3_RETRY,  # type: ignore[arg-type]
        )

    async def put_bytes(self, key: str, data: bytes) -> None:
        try:
            await obstore.put_async(self._store, check_key(key), data, attributes=self._attributes(key))
        except BaseObstoreError as exc:
            raise StorageError(f"could not store {key}: {exc}", operation="put") from exc

    async def put_file(self, key: str, source: Path) -> None:
        try:
            await obstore.put_async(self._store, check_key(key), source, attributes=self._attributes(key))
        except BaseObstoreError as exc:
            raise StorageError(f"could not store {key}: {exc}", operation="put") from exc

    async def stat(self, key: str) -> ObjectInfo | None:
        try:
            meta = await obstore.head_async(self._store, check_key(key))
        except (ValueError, FileNotFoundError):
            return None
        except BaseObstoreError as exc:
            raise StorageError(f"could not look up {key}: {exc}", operation="stat") from exc
        etag = meta["e_tag"] or f'"{meta["size"]:x}-{meta["last_modified"].timestamp():.0f}"'
        return ObjectInfo(size=meta["size"], etag=etag, modified=meta["last_modified"].timestamp())

    async def stream(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        if end <= start:
            return
        try:
            result = await obstore.get_async(self._store, check_key(key), options={"range": (start, end)})
            async for chunk in result.stream(min_chunk_size=CHUNK_BYTES):
                yield bytes(chunk)
        except BaseObstoreError as exc:
            raise StorageError(f"could not read {key}: {exc}", operation="get") from exc

    async def presign(self, key: str, expires_seconds: int) -> str | None:
        try:
            path = check_key(key)
            return await obstore.sign_async(self._signer, "GET", path, timedelta(seconds=expires_seconds))
        except BaseObstoreError as exc:  # e.g. instance credentials that cannot be fetched
            raise StorageError(f"could not sign a URL for {key}: {exc}", operation="presign") from exc

    async def presign_upload(self, key: str, expires_seconds: int) -> str | None:
        try:
            path = check_key(key)
            return await obstore.sign_async(self._signer, "PUT", path, timedelta(seconds=expires_seconds))
        except BaseObstoreError as exc:
            raise StorageError(f"could not sign an upload URL for {key}: {exc}") from exc

    async def delete(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            await obstore.delete_async(self._store, [check_key(k) for k in keys])
        except FileNotFoundError:
            pass
        except BaseObstoreError as exc:
            raise StorageError(f"could not delete {len(keys)} objects: {exc}") from exc

    async def listing(self, prefix: str) -> AsyncIterator[tuple[str, float]]:
        try:
            async for batch in obstore.list(self._store, prefix=check_key(prefix.rstrip("/"))):
                for meta in batch:
                    yield meta["path"], meta["last_modified"].timestamp()
        except BaseObstoreError as exc:
            raise StorageError(f"could not list {prefix}: {exc}") from exc

    @staticmethod
    def _attributes(key: str) -> dict[str, str]:
        found = media_type(key)
        return {"Content-Type": found} if found else {}
