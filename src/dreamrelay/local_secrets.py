"""The secrets this data directory keeps, each made on first need (owner-only files): the admin token,
the sandbox key, the first-start key when it cannot be shown."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from dreamrelay.settings import Settings


def admin_token_path(settings: Settings) -> Path:
    return settings.data_dir / "admin_token"


def ensure_admin_token(settings: Settings) -> tuple[str, bool]:
    """DREAMRELAY_ADMIN_TOKEN if set; else the token kept in the data directory, made on first need.

    Returns (token, created now). The file is readable by its owner only.
    """
    if settings.admin_token:
        return settings.admin_token, False
    return ensure_secret(admin_token_path(settings), "dra-")


def save_first_key(settings: Settings, api_key: str) -> Path:
    """The first-start key in `<data dir>/first_start_key` (owner-only), for when it cannot be shown."""
    path = settings.data_dir / "first_start_key"
    partial = path.with_name(f"{path.name}.{secrets.token_hex(4)}.partial")
    partial.touch(mode=0o600)
    partial.write_text(api_key + "\n")
    partial.replace(path)
    return path


def sandbox_key_path(settings: Settings) -> Path:
    return settings.data_dir / "sandbox_key"


def ensure_sandbox_key(settings: Settings) -> str:
    """DREAMRELAY_SANDBOX_KEY if set; else a random key kept in the data directory (made like the
    admin token), which the mounted sandbox and the sandbox channels of this data directory share."""
    if settings.sandbox_key:
        return settings.sandbox_key
    return ensure_secret(sandbox_key_path(settings), "drs-")[0]


def ensure_secret(path: Path, prefix: str) -> tuple[str, bool]:
    """The secret kept in `path` (owner-only), made on first need; (secret, created now).

    Several processes starting at once agree: the first rename wins and the others read its file.
    """
    if path.exists():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = prefix + secrets.token_urlsafe(32)
    partial = path.with_name(f"{path.name}.{secrets.token_hex(4)}.partial")
    partial.touch(mode=0o600)
    partial.write_text(secret + "\n")
    try:
        os.link(partial, path)  # fails if another process made it first
        created = True
    except FileExistsError:
        created = False
    finally:
        partial.unlink(missing_ok=True)
    return path.read_text().strip(), created
