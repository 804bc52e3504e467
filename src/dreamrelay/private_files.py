"""Owner-only places on disk: the data directory and what is secret in it, whatever the umask.

The data directory holds the store (SQLite and its WAL), the secrets (admin token, sandbox key, signing
secrets), the sandbox's generations (prompts, callback URLs with their tokens) and, by default, the
media. Under the usual umask 022 everything would be readable by every local user; a directory of mode
0700 closes all of it at once, and the files that matter are 0600 themselves as well (so a copy or a
loosened directory does not open them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

log = logging.getLogger(__name__)


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner may enter: made 0700 if missing, tightened if looser."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    _tighten(path, PRIVATE_DIR)
    return path


def private_file(path: Path, *, create: bool = True) -> Path:
    """`path` as an owner-only file (0600): made empty if missing (unless `create` is false), tightened
    if looser. Made before SQLite opens a database, it gives the WAL and shared memory the same mode."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    if path.exists():
        _tighten(path, PRIVATE_FILE)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (a partial file renamed over it), owner-only from the start."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    partial.replace(path)


def _tighten(path: Path, mode: int) -> None:
    try:
        found = path.stat()
        if stat.S_IMODE(found.st_mode) & ~mode:
            os.chmod(path, stat.S_IMODE(found.st_mode) & mode)
    except OSError as exc:  # e.g. a directory the operator made and owns: theirs to decide
        log.warning("could not make %s owner-only: %s", path, exc)
