"""Where DreamRelay keeps media: a local directory (S3-compatible storage arrives behind the same seam)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

import anyio

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class Storage(Protocol):
    async def put_bytes(self, key: str, data: bytes) -> None: ...
    async def put_file(self, key: str, source: Path) -> None: ...
    def local_path(self, key: str) -> Path | None: ...


def check_key(key: str) -> str:
    """Keys are relative paths of plain segments; '..' and absolute paths cannot pass."""
    if not _SAFE_KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"unsafe media key: {key!r}")
    return key


class LocalStorage:
    """Files under one root directory, written atomically (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _target(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put_bytes(self, key: str, data: bytes) -> None:
        await anyio.to_thread.run_sync(self._write, self._target(key), data)

    async def put_file(self, key: str, source: Path) -> None:
        await anyio.to_thread.run_sync(self._copy, self._target(key), source)

    def local_path(self, key: str) -> Path | None:
        try:
            path = self._target(key)
        except ValueError:
            return None
        return path if path.is_file() else None

    @staticmethod
    def _write(target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)

    @staticmethod
    def _copy(target: Path, source: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        os.close(fd)
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
