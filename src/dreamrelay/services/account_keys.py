"""Customers manage their own account's keys (the /account/keys API and the console).

Rules on top of the operator's key actions in services/admin.py:
- an account holds at most `max_keys` keys (the operator's setting, else the server's default);
- a key manages only itself and the keys below it (those it made, and those they made): it lists,
  changes and deletes only those; every other key of the account answers as unknown (404);
- a customer never grants more than the key they are calling with: every limit of a key they make or
  change is within that key's (rpm, tasks in flight, batch rpm, models, expiry), and its spending cap
  within what that key (and every key above it) has left. What keys below spend counts against every
  cap above (store/spend_caps.py), so a new key never adds spending room. Left out, a limit is
  inherited from the calling key, the spending cap as what it has left;
- `batch_envelope` is the operator's compatibility setting: a new key takes its maker's, a customer
  cannot set it;
- the operator's disable (`disabled_by_operator`) stands until the operator lifts it; a disabled or
  deleted key takes every key below it along (deleted with it; refused while it is disabled).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Protocol

from dreamrelay.domain.errors import Conflict, Forbidden, InvalidRequest, NotFound
from dreamrelay.domain.keys import MAX_KEY_CHAIN, KeyRow, remaining
from dreamrelay.formats.own import iso_millis
from dreamrelay.ratelimit import effective_limit
from dreamrelay.services import admin
from dreamrelay.services.admin_views import CustomerKey, NewCustomerKey
from dreamrelay.store import accounts as account_store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from dreamrelay.key_cache import KeyCache
    from dreamrelay.services.auth import Caller
    from dreamrelay.settings import Settings
    from dreamrelay.store.engine import Database


class Collaborators(Protocol):
    db: Database
    settings: Settings  # the server's limits and key cap
    key_cache: KeyCache


RATE_LIMITS = ("rpm", "max_in_flight", "batch_rpm")
INHERITED = (*RATE_LIMITS, "allowed_models", "expires_at", "batch_envelope")


def _view(key: KeyRow, caller: Caller, shown_once: str | None = None) -> CustomerKey:
    """A key (a row with `active`: services/admin.py with_active) as its customer sees it; a new key
    with the key itself (`shown_once`)."""
    view = CustomerKey(
        id=key.id,
        prefix=key.prefix,
        name=key.name,
        disabled=key.disabled,
        expires_at=admin.when(key.expires_at),
        spend_cap=key.spend_cap,
        spent=key.spent,
        allowed_models=key.allowed_models,
        batch_envelope=key.batch_envelope,
        disabled_by_operator=key.disabled_by_operator,
        parent_id=key.parent_id,
        active=key.active,
        rpm=key.rpm,
        max_in_flight=key.max_in_flight,
        batch_rpm=key.batch_rpm,
        created_at=iso_millis(key.created_at),
        last_used_at=admin.when(key.last_used_at),
        current=key.id == caller.key_id,  # the key this request came with
    )
    if shown_once is not None:
        return NewCustomerKey(**asdict(view), key=shown_once)
    return view


def _server_defaults(rt: Collaborators) -> dict[str, int]:
    s = rt.settings
    return {
        "rpm": s.rate_limit_rpm,
        "max_in_flight": s.rate_limit_in_flight,
        "batch_rpm": s.rate_limit_batch_rpm,
    }


def _amount(value: int | None, default: int | None = None) -> float:
    """A limit as a number to compare: a rate limit of 0 (and a missing cap) is unlimited."""
    if default is not None:
        value = effective_limit(value, default)
        return math.inf if value == 0 else float(value)
    return math.inf if value is None else float(value)


def within(
    settings: dict[str, Any],
    ceiling: KeyRow,
    defaults: dict[str, int],
    *,
    creating: bool,
    spend_room: float,
) -> dict[str, Any]:
    """`settings` checked against the calling key's own (`ceiling`); on create, the rest inherited.

    `spend_room`: the most the key's spending cap may be (inf: no cap above it)."""
    out = dict(settings)
    if creating:
        for name in INHERITED:
            out.setdefault(name, getattr(ceiling, name))
        out.setdefault("spend_cap", None if spend_room == math.inf else int(spend_room))

    def refuse(what: str) -> Forbidden:
        return Forbidden(
            f"{what}: a key cannot get more than the key you are using", code="above_your_limits"
        )

    for name in RATE_LIMITS:
        own = getattr(ceiling, name)
        if name in out and _amount(out[name], defaults[name]) > _amount(own, defaults[name]):
            limit = effective_limit(own, defaults[name])
            raise refuse(f"{name} may be at most {limit}")
    if "spend_cap" in out and _amount(out["spend_cap"]) > spend_room:
        raise refuse(f"spend_cap may be at most {int(spend_room)} (what your key has left to spend)")
    if "allowed_models" in out and ceiling.allowed_models is not None:
        models = out["allowed_models"]
        if models is None or not set(models) <= set(ceiling.allowed_models):
            raise refuse(f"allowed_models must be among {', '.join(ceiling.allowed_models)}")
    given = settings.get("expires_at")
    if given is not None and given <= time.time():
        raise InvalidRequest("expires_at must be in the future")
    own_expiry = math.inf if ceiling.expires_at is None else ceiling.expires_at
    if "expires_at" in out and _amount(out["expires_at"]) > own_expiry:
        raise refuse("expires_at may be no later than your key's")
    return out


async def _calling_line(conn: AsyncConnection, caller: Caller) -> list[KeyRow]:
    """The calling key and every key above it, the operator's first (their caps bound its grants)."""
    rows = await account_store.describe_keys(conn, key_ids=caller.chain)
    if not rows or rows[-1].id != caller.key_id:  # deleted by another request since this one signed in
        raise Forbidden("this API key no longer exists")
    return rows


def _unknown(key_id: int) -> NotFound:
    return NotFound(f"no key with id {key_id}", code="key_not_found")


async def _managed(conn: AsyncConnection, caller: Caller, key_id: int) -> list[KeyRow]:
    """The line of key `key_id` (the key last), if the caller manages it: it is the caller's own key or
    one below it. Any other key, of this account or another, is unknown."""
    line = await account_store.line(conn, key_id)
    if caller.key_id not in line:
        raise _unknown(key_id)
    return await account_store.describe_keys(conn, key_ids=line)


async def key_cap(rt: Collaborators, account_id: int) -> int:
    """How many keys the account may hold: the operator's setting, else the server's default."""
    async with rt.db.reader() as conn:
        account = await account_store.get_account_by_id(conn, account_id)
    max_keys = account.max_keys if account is not None else None
    return rt.settings.max_keys_per_account if max_keys is None else max_keys


def _below(rows: list[KeyRow], key_id: int) -> list[KeyRow]:
    """The key `key_id` and every key below it, of an account's `rows` (oldest first: a parent is
    always older than its children, so one pass finds them all)."""
    family = {key_id}
    for row in rows:
        if row.parent_id in family:
            family.add(row.id)
    return [row for row in rows if row.id in family]


async def list_keys(rt: Collaborators, caller: Caller) -> list[CustomerKey]:
    """The calling key and the keys below it: those it manages."""
    async with rt.db.reader() as conn:
        rows = await account_store.describe_keys(conn, account_id=caller.account_id)
    return [_view(row, caller) for row in _below(admin.with_active(rows), caller.key_id)]


async def create_key(rt: Collaborators, caller: Caller, settings: dict[str, Any]) -> CustomerKey:
    """A new key below the calling one, shown once; 409 key_cap_reached at the operator's cap."""
    name = settings.pop("name", None) or ""
    if settings.get("disabled") is None:
        settings.pop("disabled", None)
    admin.check_key_settings(settings)
    if len(caller.chain) >= MAX_KEY_CHAIN:
        raise Conflict(
            f"keys may be made at most {MAX_KEY_CHAIN - 1} levels below the operator's; "
            "make this key with a key higher up",
            code="key_depth_reached",
        )
    async with rt.db.transaction() as conn:
        count, max_keys = await account_store.lock_key_count(conn, caller.account_id)
        cap = rt.settings.max_keys_per_account if max_keys is None else max_keys
        if count >= cap:
            raise Conflict(
                f"this account may hold at most {cap} keys; delete one or ask the operator",
                code="key_cap_reached",
            )
        line = await _calling_line(conn, caller)
        values = within(settings, line[-1], _server_defaults(rt), creating=True, spend_room=remaining(line))
        created, key = await admin.insert_key(conn, caller.account_id, name, values, parent_id=caller.key_id)
    return _view(admin.with_active([*line, created])[-1], caller, key)


async def update_key(rt: Collaborators, caller: Caller, key_id: int, settings: dict[str, Any]) -> CustomerKey:
    if not settings:
        raise InvalidRequest("nothing to change")
    admin.check_key_settings(settings)
    if key_id == caller.key_id and settings.get("disabled"):
        raise Conflict("you cannot disable the key you are using; use another key", code="key_in_use")
    async with rt.db.transaction() as conn:
        target = (await _managed(conn, caller, key_id))[-1]
        if settings.get("disabled") is False and target.disabled_by_operator:
            raise Forbidden(
                "the operator disabled this key; only the operator can enable it",
                code="disabled_by_operator",
            )
        line = await _calling_line(conn, caller)
        # What the target has spent is within what the caller's line has spent already.
        room = remaining(line) + target.spent
        values = within(settings, line[-1], _server_defaults(rt), creating=False, spend_room=room)
        if await account_store.update_key(conn, key_id, values, account_id=caller.account_id) is None:
            raise _unknown(key_id)
        described = admin.with_active(await _managed(conn, caller, key_id))[-1]
    await rt.key_cache.invalidate()  # after the commit: every process reads the key afresh
    return _view(described, caller)


async def delete_key(rt: Collaborators, caller: Caller, key_id: int) -> None:
    """Delete a key below the calling one, and every key below it (what they spent stays counted)."""
    if key_id == caller.key_id:
        raise Conflict("you cannot delete the key you are using; use another key", code="key_in_use")
    async with rt.db.transaction() as conn:
        await _managed(conn, caller, key_id)
        if not await account_store.delete_key(conn, key_id, caller.account_id):
            raise _unknown(key_id)
    await rt.key_cache.invalidate()
