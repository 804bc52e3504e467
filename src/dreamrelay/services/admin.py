"""Operator actions, shared by the admin HTTP API and the CLI: accounts, keys, money, prices, deliveries.

Every function returns a frozen dataclass of services/admin_views.py (ledger and delivery rows are
still their store rows); times are ISO 8601 UTC strings.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.exc import IntegrityError

from dreamrelay.domain import ranges
from dreamrelay.domain.catalog import (
    ALLOWED_MODELS_MAX,
    DM_ACTIONS,
    KEY_MODELS,
    KLING_VIDEO_ACTIONS,
    MODEL_NAME_MAX_CHARS,
    PRICED_MODELS,
)
from dreamrelay.domain.errors import Conflict, InvalidRequest, NotFound
from dreamrelay.domain.keys import KeyRow, active_keys
from dreamrelay.domain.pricing import PER_TASK, UNITS
from dreamrelay.formats.own import iso_millis
from dreamrelay.services.admin_views import (
    AccountDetail,
    AccountView,
    BalanceChange,
    CallbackSecret,
    InFlightMismatch,
    LedgerCheck,
    Mismatch,
    NewOperatorKey,
    OperatorKey,
    PriceRemoved,
    PriceView,
    Replayed,
    UsageLine,
)
from dreamrelay.store import accounts as account_store
from dreamrelay.store import in_flight, ledger, outbox, pricing
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
PRICE_ACTIONS = ("generate", "extend", "image", *DM_ACTIONS, *KLING_VIDEO_ACTIONS, pricing.WILDCARD)


def _times(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (iso_millis(v) if k.endswith("_at") and isinstance(v, float) else v) for k, v in row.items()}


def when(ts: float | None) -> str | None:
    """A time as every answer shows it: ISO 8601 UTC, or null."""
    return None if ts is None else iso_millis(ts)


def _account_view(account: Account) -> AccountView:
    return AccountView(
        account.id, account.name, account.balance, account.max_keys, iso_millis(account.created_at)
    )


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
async def create_account(rt: Collaborators, name: str, balance: int = 0) -> AccountView:
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
    return replace(_account_view(account), balance=balance)


async def list_accounts(rt: Collaborators, *, limit: int = 100, offset: int = 0) -> list[AccountView]:
    async with rt.db.reader() as conn:
        rows = await account_store.list_accounts(conn)
    return [_account_view(a) for a in rows[offset : offset + limit]]


async def show_account(rt: Collaborators, who: AccountRef) -> AccountDetail:
    async with rt.db.reader() as conn:
        account = await _account(conn, who)
        keys = await account_store.describe_keys(conn, account_id=account.id)
        usage = await task_store.usage(conn, account_id=account.id)
    in_flight = sum(u["tasks"] for u in usage if u["state"] in ("pending", "processing"))
    view = _account_view(account)
    return AccountDetail(
        view.id,
        view.name,
        view.balance,
        view.max_keys,
        view.created_at,
        keys=operator_views(keys),
        tasks={state: sum(u["tasks"] for u in usage if u["state"] == state) for state in _STATES},
        in_flight=in_flight,
    )


_STATES = ("pending", "processing", "completed", "failed")


async def set_max_keys(rt: Collaborators, name: str, max_keys: int | None) -> AccountView:
    """How many keys the customer may hold (self-service creates stop there); None = the server's."""
    if max_keys is not None and not 0 <= max_keys <= MAX_KEYS_CEILING:
        raise InvalidRequest(f"max_keys must be 0-{MAX_KEYS_CEILING} or null (the server's default)")
    async with rt.db.transaction() as conn:
        account = await _account(conn, name)
        await account_store.set_max_keys(conn, account.id, max_keys)
    return replace(_account_view(account), max_keys=max_keys)


MAX_KEYS_CEILING = 1000


async def change_balance(rt: Collaborators, name: str, amount: int, note: str = "") -> BalanceChange:
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
    return BalanceChange(name, amount, balance)


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


async def verify_ledger(rt: Collaborators) -> LedgerCheck:
    """Every account's ledger against its balance, and every key's in-flight number against a count."""
    async with rt.db.reader() as conn:
        checked, mismatches = await ledger.verify(conn)
        keys_checked, off = await in_flight.mismatches(conn)
    return LedgerCheck(
        checked,
        not mismatches,
        [Mismatch(m.name, m.balance, m.ledger_sum) for m in mismatches],
        keys_checked,
        [InFlightMismatch(m.key_id, m.kept, m.counted) for m in off],
    )


async def usage(
    rt: Collaborators, *, account: str | None = None, since: float | None = None, until: float | None = None
) -> list[UsageLine]:
    """Per account and model: tasks by state, credits captured (completed) and held (in flight)."""
    ranges.window(since, until)
    async with rt.db.reader() as conn:
        account_id = await _account_id(conn, account)
        rows = await task_store.usage(conn, account_id=account_id, since=since, until=until)
        names = {a.id: a.name for a in await account_store.list_accounts(conn)}
    summary: dict[tuple[int, str], UsageLine] = {}
    for row in rows:
        entry = summary.get((row["account_id"], row["model"]))
        if entry is None:
            account_name = names.get(row["account_id"], str(row["account_id"]))
            entry = UsageLine(account_name, row["model"], dict.fromkeys(_STATES, 0))
            summary[row["account_id"], row["model"]] = entry
        entry.tasks[row["state"]] = int(row["tasks"])
        if row["state"] == "completed":
            entry.credits_charged += int(row["credits"])
        elif row["state"] in ("pending", "processing"):
            entry.credits_held += int(row["credits"])
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
        if len(models) > ALLOWED_MODELS_MAX:
            raise InvalidRequest(f"allowed_models: at most {ALLOWED_MODELS_MAX} models")
        unknown = [m for m in models if m not in KEY_MODELS]
        if unknown:
            shown = ", ".join(repr(str(m)[:MODEL_NAME_MAX_CHARS]) for m in unknown[:5])
            raise InvalidRequest(f"allowed_models: unknown models {shown}; known: {', '.join(KEY_MODELS)}")
        settings["allowed_models"] = list(dict.fromkeys(models))
    if settings.get("spend_cap") is not None:
        ranges.integer("spend_cap", settings["spend_cap"], 0, ranges.MAX_CREDITS)
    for name in ("rpm", "max_in_flight", "batch_rpm"):
        if settings.get(name) is not None:
            ranges.integer(f"{name} (0 = no limit)", settings[name], 0, ranges.MAX_LIMIT)
    if settings.get("expires_at") is not None:
        settings["expires_at"] = ranges.timestamp("expires_at", settings["expires_at"])
    return settings


def _operators_disable(settings: dict[str, Any]) -> dict[str, Any]:
    """The operator's `disabled` is the operator's own switch, apart from the customer's: only the
    operator lifts it, and it stops every key below too (store/accounts.py reads a key with its line)."""
    if "disabled" in settings:
        settings["disabled_by_operator"] = settings.pop("disabled")
    return settings


async def create_key(rt: Collaborators, account: str, name: str = "", **settings: Any) -> NewOperatorKey:
    settings = check_key_settings({k: v for k, v in settings.items() if v is not None})
    async with rt.db.transaction() as conn:
        owner = await _account(conn, account)
        created, key = await insert_key(conn, owner.id, name, _operators_disable(settings))
    view = operator_views([created])[0]
    return NewOperatorKey(**asdict(view), key=key)


async def insert_key(
    conn: AsyncConnection,
    account_id: int,
    name: str,
    settings: dict[str, Any],
    *,
    parent_id: int | None = None,
) -> tuple[KeyRow, str]:
    """A new key with checked settings (made by key `parent_id`, or by the operator): its stored row,
    and the key itself, the only time it is shown."""
    key_id, key = await account_store.create_key(conn, account_id, name, parent_id=parent_id)
    if settings:
        await account_store.update_key(conn, key_id, settings)
    return (await account_store.describe_keys(conn, key_id=key_id))[0], key


def with_active(rows: list[KeyRow]) -> list[KeyRow]:
    """Rows of keys (each one's whole line among them) with `active`: whether the key works now."""
    active = active_keys(rows, time.time())
    return [replace(row, active=row.id in active) for row in rows]


def operator_view(row: KeyRow) -> OperatorKey:
    """A key as the operator sees it: `disabled` is the operator's switch, the customer's is shown apart."""
    return OperatorKey(
        id=row.id,
        prefix=row.prefix,
        account=row.account,
        name=row.name,
        disabled=row.disabled_by_operator,
        expires_at=when(row.expires_at),
        spend_cap=row.spend_cap,
        allowed_models=row.allowed_models,
        rpm=row.rpm,
        max_in_flight=row.max_in_flight,
        batch_rpm=row.batch_rpm,
        batch_envelope=row.batch_envelope,
        spent=row.spent,
        parent_id=row.parent_id,
        created_at=iso_millis(row.created_at),
        last_used_at=when(row.last_used_at),
        active=row.active,
        disabled_by_customer=row.disabled,
    )


def operator_views(rows: list[KeyRow]) -> list[OperatorKey]:
    return [operator_view(r) for r in with_active(rows)]


async def list_keys(rt: Collaborators, account: str | None = None) -> list[OperatorKey]:
    async with rt.db.reader() as conn:
        account_id = await _account_id(conn, account)
        rows = await account_store.describe_keys(conn, account_id=account_id)
    return operator_views(rows)


async def update_key(rt: Collaborators, key_id: int, settings: dict[str, Any]) -> OperatorKey:
    """Apply the given settings (None clears a limit); the change holds at once in every process."""
    ranges.integer("key id", key_id, 1, ranges.MAX_INT32_ID)
    if not settings:
        raise InvalidRequest("nothing to change")
    check_key_settings(settings)
    async with rt.db.transaction() as conn:
        key_hash = await account_store.update_key(conn, key_id, _operators_disable(settings))
        if key_hash is None:
            raise NotFound(f"no key with id {key_id}")
        line = await account_store.describe_keys(conn, key_ids=await account_store.line(conn, key_id))
    await rt.key_cache.invalidate()  # after the commit: whoever reads the key next reads the change
    return operator_views(line)[-1]


# ---- prices ------------------------------------------------------------------------------------
def _price_fields(model: str, resolution: str, duration: str, action: str) -> dict[str, str]:
    if model not in (*PRICED_MODELS, pricing.WILDCARD):
        raise InvalidRequest(f"model must be one of {', '.join(PRICED_MODELS)} or '*'")
    if action not in PRICE_ACTIONS:
        raise InvalidRequest(f"action must be one of {', '.join(PRICE_ACTIONS)}")
    return {"model": model, "resolution": resolution, "duration": duration, "action": action}


async def list_prices(rt: Collaborators) -> list[PriceView]:
    async with rt.db.reader() as conn:
        return [PriceView(*row) for row in await pricing.list_prices(conn)]


async def set_price(
    rt: Collaborators,
    *,
    model: str,
    credits: int,
    resolution: str = "*",
    duration: str = "*",
    action: str = "*",
    unit: str = PER_TASK,
) -> PriceView:
    """Takes effect for the next submit, in every process (prices are read per submit). `unit`: what the
    credits buy, a task or a million of the tokens it uses (`1m_tokens`: it holds what its most costly
    output could use and captures what it used)."""
    ranges.integer("credits", credits, 0, ranges.MAX_PRICE)
    fields = _price_fields(model, resolution, duration, action)
    if unit not in UNITS:
        raise InvalidRequest(f"unit must be one of {', '.join(UNITS)}")
    async with rt.db.transaction() as conn:
        await pricing.set_price(conn, **fields, credits=credits, unit=unit, postgres=not rt.db.is_sqlite)
    return PriceView(**fields, credits=credits, unit=unit)


async def remove_price(
    rt: Collaborators, *, model: str, resolution: str = "*", duration: str = "*", action: str = "*"
) -> PriceRemoved:
    fields = _price_fields(model, resolution, duration, action)
    async with rt.db.transaction() as conn:
        if not await pricing.remove_price(conn, **fields):
            raise NotFound("no such price rule")
    return PriceRemoved(fields["model"], fields["resolution"], fields["duration"], fields["action"])


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
) -> Replayed:
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
    return Replayed(count)


async def callback_secret(rt: Collaborators, account: AccountRef, *, rotate: bool = False) -> CallbackSecret:
    """The account's signing secret (made on first need); rotating keeps the old one for the grace."""
    async with rt.db.reader() as conn:
        owner = await _account(conn, account)
    async with rt.db.direct_transaction() as tx:
        if rotate:
            grace = rt.settings.callback_secret_grace_seconds
            await account_store.rotate_callback_secret(tx, owner.id, grace)
        secrets_in_use = await account_store.callback_secrets(tx, owner.id, time.time())
    previous = secrets_in_use[1] if len(secrets_in_use) > 1 else None
    return CallbackSecret(owner.name, secrets_in_use[0], previous)
