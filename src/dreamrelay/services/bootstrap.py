"""First start on an empty store: a demo account, its key and the sandbox channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dreamrelay.store import accounts as account_store
from dreamrelay.store import channels as channel_store
from dreamrelay.store import ledger

DEMO_CREDITS = 100_000

if TYPE_CHECKING:
    from dreamrelay.settings import Settings
    from dreamrelay.store.engine import Database


class Collaborators(Protocol):
    db: Database
    settings: Settings


@dataclass(frozen=True)
class FirstStart:
    account: str
    api_key: str


async def first_start(rt: Collaborators) -> FirstStart | None:
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
