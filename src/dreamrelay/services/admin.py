"""Operator actions, shared by the admin HTTP API and the CLI: accounts, keys, money, prices, deliveries.

Every function returns plain JSON-ready data; times are ISO 8601 UTC strings.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.exc import IntegrityError

from dreamrelay.domain import ranges
from dreamrelay.domain.catalog import DM_ACTIONS, IMAGE_MODELS, MODELS, PHOTON_MODELS
from dreamrelay.domain.errors import Conflict, InvalidRequest, NotFound
from dreamrelay.formats.own import iso_millis
from dreamrelay.store import accounts as account_store
from dreamrelay.store import ledger, outbox, pricing
from dreamrelay.store import tasks as task_store
from dreamrelay.store.accounts import Account

if TYPE_CHECKING:
    import asyncio

    from sqlalchemy.ext.asyncio import AsyncConnection

    from dreamrelay.key_cache import KeyCache
    from dreamrelay.settings import Settings
    from dreamrelay.store.engine import Database


class Collaborators(Protocol):
    db: Database
    settings: Settings
    key_cache: KeyCache  # a key change is seen by every process at once
    wake_deliverer: asyncio.Event  # a replayed delivery goes out now


ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
PRICE_ACTIONS = ("generate", "extend", "image", *DM_ACTIONS, pricing.WILDCARD)


def _times(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (iso_millis(v) if k.endswith("_at") and isinstance(v, float) else v) for k, v in row.items()}


def _account_view(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "balance": account.balance,
        "max_keys": account.max_keys,
        "created_at": iso_millis(account.created_at),
    }


# An account as the operator names it, or (an int) as a signed-in customer's key knows it.
AccountRef = str | int


async def _account(conn: AsyncConnection, who: AccountRef) -> Account:
    if isinstance(who, int):
        found = await account_store.get_account_by_id(conn, who)
    else:
        found = await account_store.get_account(conn, who)
    if found is None:
        raise NotFound(f"no account named {who!r}")
    return found


async def _account_id(conn: AsyncConnection, who: AccountRef | None) -> int | None:
    """The id of the account a filter names; None (no filter) when it names none."""
    return None if who is None or who == "" else (await _account(conn, who)).id


# ---- accounts and money -----------------------------------------------------------------------
async def create_account(rt: Collaborators, name: str, balance: int = 0) -> dict[str, Any]:
    if not ACCOUNT_NAME.match(name):
        raise InvalidRequest("account name: 1-100 letters, digits, '_', '.', '@' or '-'")
    ranges.integer("balance", balance, 0, ranges.MAX_CREDITS)
    try:
        async with rt.db.transaction() as conn:
            if await account_store.get_account(conn, name) is not None:
                raise Conflict(f"account {name!r} exists already", code="account_exists")
            account = await account_store.create_account(conn, name)
            if balance:
                await ledger.top_up(conn, account.id, balance, note="opening balance")
    except IntegrityError as exc:
        raise Conflict(f"account {name!r} exists already", code="account_exists") from exc
    return {**_account_view(account), "balance": balance}


async def list_accounts(rt: Collaborators, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    async with rt.db.reader() as conn:
        rows = await account_store.list_accounts(conn)
    return [_account_view(a) for a in rows[offset : offset + limit]]


async def show_account(rt: Collaborators, who: AccountRef) -> dict[str, Any]:
    async with rt.db.reader() as conn:
        account = await _account(conn, who)
        keys = await account_store.describe_keys(conn, account_id=account.id)
        usage = await task_store.usage(conn, account_id=account.id)
    in_flight = sum(u["tasks"] for u in usage if u["state"] in ("pending", "processing"))
    return {
        **_account_view(account),
        "keys": [_times(k) for k in keys],
        "tasks": {state: sum(u["tasks"] for u in usage if u["state"] == state) for state in _STATES},
        "in_flight": in_flight,
    }


_STATES = ("pending", "processing", "completed", "failed")


async def set_max_keys(rt: Collaborators, name: str, max_keys: int | None) -> dict[str, Any]:
    """How many keys the customer may hold (self-service creates stop there); None = the server's."""
    if max_keys is not None and not 0 <= max_keys <= MAX_KEYS_CEILING:
        raise InvalidRequest(f"max_keys must be 0-{MAX_KEYS_CEILING} or null (the server's default)")
    async with rt.db.transaction() as conn:
        account = await _account(conn, name)
        await account_store.set_max_keys(conn, account.id, max_keys)
    return {**_account_view(account), "max_keys": max_keys}


MAX_KEYS_CEILING = 1000


async def change_balance(rt: Collaborators, name: str, amount: int, note: str = "") -> dict[str, Any]:
    """Positive: a top-up. Negative: an adjustment. Each is one ledger row; the balance stays within
    [0, MAX_CREDITS]."""
    ranges.integer("amount", amount, -ranges.MAX_CREDITS, ranges.MAX_CREDITS)
    if amount == 0:
        raise InvalidRequest("amount must not be zero")
    async with rt.db.transaction() as conn:
        account = await _account(conn, name)
        try:
            balance = await ledger.top_up(conn, account.id, amount, note=note)
        except ledger.BalanceTooLow as exc:
            raise Conflict(
                f"adjustment of {amount} would take {name!r} below zero", code="balance_too_low"
            ) from exc
        except ledger.BalanceTooHigh as exc:
            raise Conflict(
                f"a change of {amount} would take {name!r} above {ranges.MAX_CREDITS} credits",
                code="balance_too_high",
            ) from exc
    return {"account": name, "amount": amount, "balance": balance}


async def ledger_entries(
    rt: Collaborators,
    *,
    account: AccountRef | None = None,
    task_id: str | None = None,
    kind: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    if kind is not None and kind not in ledger.KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(ledger.KINDS)}")
    ranges.window(since, until)
    async with rt.db.reader() as conn:
        account_id = await _account_id(conn, account)
        wanted = ledger.Wanted(account_id, task_id, kind, since, until, limit, offset)
        rows = await ledger.entries(conn, wanted)
    return [_times(r) for r in rows]


async def verify_ledger(rt: Collaborators) -> dict[str, Any]:
    async with rt.db.reader() as conn:
        checked, mismatches = await ledger.verify(conn)
    return {
        "accounts_checked": checked,
        "balanced": not mismatches,
        "mismatches": [
            {"account": m.name, "balance": m.balance, "ledger_sum": m.ledger_sum} for m in mismatches
        ],
    }


async def usage(
    rt: Collaborators, *, account: str | None = None, since: float | None = None, until: float | None = None
) -> list[dict[str, Any]]:
    """Per account and model: tasks by state, credits captured (completed) and held (in flight)."""
    ranges.window(since, until)
    async with rt.db.reader() as conn:
        account_id = await _account_id(conn, account)
        rows = await task_store.usage(conn, account_id=account_id, since=since, until=until)
        names = {a.id: a.name for a in await account_store.list_accounts(conn)}
    summary: dict[tuple[int, str], dict[str, Any]] = {}
    for row in rows:
        entry = summary.setdefault(
            (row["account_id"], row["model"]),
            {
                "account": names.get(row["account_id"], str(row["account_id"])),
                "model": row["model"],
                "tasks": dict.fromkeys(_STATES, 0),
                "credits_charged": 0,
                "credits_held": 0,
            },
        )
        entry["tasks"][row["state"]] = int(row["tasks"])
        if row["state"] == "completed":
            entry["credits_charged"] += int(row["credits"])
        elif row["state"] in ("pending", "processing"):
            entry["credits_held"] += int(row["credits"])
    return list(summary.values())


# ---- keys --------------------------------------------------------------------------------------
# How POST /luma/tasks answers a key: the seed's bare array (default) or new-api's envelope.
BATCH_ENVELOPES = ("bare", "newapi")


def check_key_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The one check of key settings, for the operator's and the customer's changes alike."""
    for name in ("name", "disabled", "batch_envelope"):  # these always have a value; limits can be cleared
        if name in settings and settings[name] is None:
            raise InvalidRequest(f"{name} cannot be null")
    if settings.get("batch_envelope", BATCH_ENVELOPES[0]) not in BATCH_ENVELOPES:
        raise InvalidRequest(f"batch_envelope must be one of {', '.join(BATCH_ENVELOPES)}")
    models = settings.get("allowed_models")
    if models is not None:
        known = (*MODELS, *IMAGE_MODELS)
        unknown = [m for m in models if m not in known]
        if unknown:
            raise InvalidRequest(f"allowed_models: unknown models {unknown}; known: {', '.join(known)}")
    if settings.get("spend_cap") is not None:
        ranges.integer("spend_cap", settings["spend_cap"], 0, ranges.MAX_CREDITS)
    for name in ("rpm", "max_in_flight", "batch_rpm"):
        if settings.get(name) is not None:
            ranges.integer(f"{name} (0 = no limit)", settings[name], 0, ranges.MAX_LIMIT)
    if settings.get("expires_at") is not None:
        settings["expires_at"] = ranges.timestamp("expires_at", settings["expires_at"])
    return settings


async def create_key(rt: Collaborators, account: str, name: str = "", **settings: Any) -> dict[str, Any]:
    settings = check_key_settings({k: v for k, v in settings.items() if v is not None})
    async with rt.db.transaction() as conn:
        owner = await _account(conn, account)
        return await insert_key(conn, owner.id, name, settings)


async def insert_key(
    conn: AsyncConnection, account_id: int, name: str, settings: dict[str, Any]
) -> dict[str, Any]:
    """A new key with checked settings; the answer holds the key itself, the only time it is shown."""
    key_id, key = await account_store.create_key(conn, account_id, name)
    if settings:
        await account_store.update_key(conn, key_id, settings)
    return {**describe_key(await account_store.describe_keys(conn, key_id=key_id)), "key": key}


def describe_key(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return _times(rows[0])


async def list_keys(rt: Collaborators, account: str | None = None) -> list[dict[str, Any]]:
    async with rt.db.reader() as conn:
        account_id = await _account_id(conn, account)
        rows = await account_store.describe_keys(conn, account_id=account_id)
    return [_times(r) for r in rows]


async def update_key(rt: Collaborators, key_id: int, settings: dict[str, Any]) -> dict[str, Any]:
    """Apply the given settings (None clears a limit); the change holds at once in every process."""
    ranges.integer("key id", key_id, 1, ranges.MAX_INT32_ID)
    if not settings:
        raise InvalidRequest("nothing to change")
    check_key_settings(settings)
    async with rt.db.transaction() as conn:
        key_hash = await account_store.update_key(conn, key_id, settings)
        if key_hash is None:
            raise NotFound(f"no key with id {key_id}")
        described = describe_key(await account_store.describe_keys(conn, key_id=key_id))
    await rt.key_cache.invalidate()  # after the commit: whoever reads the key next reads the change
    return described


# ---- prices ------------------------------------------------------------------------------------
def _price_fields(model: str, resolution: str, duration: str, action: str) -> dict[str, str]:
    models = (*MODELS, *IMAGE_MODELS, *PHOTON_MODELS)
    if model not in (*models, pricing.WILDCARD):
        raise InvalidRequest(f"model must be one of {', '.join(models)} or '*'")
    if action not in PRICE_ACTIONS:
        raise InvalidRequest(f"action must be one of {', '.join(PRICE_ACTIONS)}")
    return {"model": model, "resolution": resolution, "duration": duration, "action": action}


async def list_prices(rt: Collaborators) -> list[dict[str, Any]]:
    async with rt.db.reader() as conn:
        return await pricing.list_prices(conn)


async def set_price(
    rt: Collaborators,
    *,
    model: str,
    credits: int,
    resolution: str = "*",
    duration: str = "*",
    action: str = "*",
) -> dict[str, Any]:
    """Takes effect for the next submit, in every process (prices are read per submit)."""
    ranges.integer("credits", credits, 0, ranges.MAX_PRICE)
    fields = _price_fields(model, resolution, duration, action)
    async with rt.db.transaction() as conn:
        await pricing.set_price(conn, **fields, credits=credits, postgres=not rt.db.is_sqlite)
    return {**fields, "credits": credits}


async def remove_price(
    rt: Collaborators, *, model: str, resolution: str = "*", duration: str = "*", action: str = "*"
) -> dict[str, Any]:
    fields = _price_fields(model, resolution, duration, action)
    async with rt.db.transaction() as conn:
        if not await pricing.remove_price(conn, **fields):
            raise NotFound("no such price rule")
    return {**fields, "removed": True}


# ---- callbacks ---------------------------------------------------------------------------------
async def deliveries(
    rt: Collaborators,
    *,
    task_id: str | None = None,
    account: AccountRef | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    with_attempts: bool = False,
) -> list[dict[str, Any]]:
    if status is not None and status not in (outbox.PENDING, outbox.DELIVERED, outbox.DEAD):
        raise InvalidRequest("status must be pending, delivered or dead")
    async with rt.db.reader() as conn:
        account_id = await _account_id(conn, account)
        events = await outbox.list_events(
            conn, task_id=task_id, account_id=account_id, status=status, limit=limit, offset=offset
        )
        if with_attempts:
            for event in events:
                event["attempts_log"] = [_times(a) for a in await outbox.list_attempts(conn, event["id"])]
    return [_times(e) for e in events]


async def replay(
    rt: Collaborators,
    *,
    event_ids: list[int] | None = None,
    task_id: str | None = None,
    account: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """Send events again with their original webhook-id; by id, or every event matching the filters."""
    if not (event_ids or task_id or account or status):
        raise InvalidRequest("name events to replay: ids, task_id, account or status")
    ids = [ranges.integer("event id", i, 1, ranges.MAX_INT64_ID) for i in event_ids or []]
    if task_id or account or status:
        matching = await deliveries(rt, task_id=task_id, account=account, status=status, limit=100_000)
        ids += [e["id"] for e in matching]
    async with rt.db.transaction() as conn:
        count = await outbox.replay(conn, ids)
    rt.wake_deliverer.set()
    return {"replayed": count}


async def callback_secret(rt: Collaborators, account: AccountRef, *, rotate: bool = False) -> dict[str, Any]:
    """The account's signing secret (made on first need); rotating keeps the old one for the grace."""
    async with rt.db.reader() as conn:
        owner = await _account(conn, account)
    async with rt.db.direct_transaction() as tx:
        if rotate:
            grace = rt.settings.callback_secret_grace_seconds
            await account_store.rotate_callback_secret(tx, owner.id, grace)
        secrets_in_use = await account_store.callback_secrets(tx, owner.id, time.time())
    previous = secrets_in_use[1] if len(secrets_in_use) > 1 else None
    return {"account": owner.name, "secret": secrets_in_use[0], "previous_secret": previous}
