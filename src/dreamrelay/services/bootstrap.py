"""First start on an empty store: a demo account, its key and the sandbox channel."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dreamrelay.settings import Settings
from dreamrelay.store import accounts as account_store
from dreamrelay.store import channels as channel_store
from dreamrelay.store import ledger

DEMO_CREDITS = 100_000

if TYPE_CHECKING:
    from dreamrelay.runtime import Runtime


@dataclass(frozen=True)
class FirstStart:
    account: str
    api_key: str


async def first_start(rt: Runtime) -> FirstStart | None:
    """Seed an empty store; None when it already has accounts (every later start)."""
    async with rt.db.transaction() as conn:
        if await account_store.count_accounts(conn) > 0:
            return None
        account = await account_store.create_account(conn, rt.settings.demo_account)
        _key_id, key = await account_store.create_key(conn, account.id, name="demo")
        await ledger.top_up(conn, account.id, DEMO_CREDITS, note="first start: demo credits")
        if not await channel_store.list_channels(conn):
            await channel_store.add_channel(conn, name="sandbox", kind="sandbox", priority=0)
    return FirstStart(account=account.name, api_key=key)


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
