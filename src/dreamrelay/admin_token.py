"""The operator's admin token: DREAMRELAY_ADMIN_TOKEN, or one made on first need and kept in the data
directory (readable by its owner only)."""

from __future__ import annotations

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
    path = admin_token_path(settings)
    if path.exists():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = "dra-" + secrets.token_urlsafe(32)
    partial = path.with_suffix(".partial")
    partial.touch(mode=0o600)
    partial.write_text(token + "\n")
    try:
        partial.rename(path) if not path.exists() else partial.unlink()
    except OSError:
        partial.unlink(missing_ok=True)
    return path.read_text().strip(), True
