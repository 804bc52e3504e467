"""Customers manage their own account's keys (the /account/keys API and the console).

Two rules on top of the operator's key actions in services/admin.py:
- an account holds at most `max_keys` keys (the operator's setting, else the server's default);
- a customer never grants more than the key they are calling with: every limit of a key they make or
  change is within that key's (rpm, tasks in flight, batch rpm, spend cap, models, expiry). The
  operator's keys are the root of every chain, so nothing a customer makes exceeds what the operator
  gave. Left out, a limit is inherited from the calling key.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Protocol

from dreamrelay.domain.errors import Conflict, Forbidden, InvalidRequest, NotFound
from dreamrelay.ratelimit import effective_limit
from dreamrelay.services import admin
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
INHERITED = (*RATE_LIMITS, "spend_cap", "allowed_models", "expires_at")
SHOWN = (
    "id",
    "prefix",
    "name",
    "disabled",
    "expires_at",
    "spend_cap",
    "spent",
    "allowed_models",
    "rpm",
    "max_in_flight",
    "batch_rpm",
    "created_at",
    "last_used_at",
)


def _view(key: dict[str, Any], caller: Caller) -> dict[str, Any]:
    view = {name: key[name] for name in SHOWN}
    view["current"] = key["id"] == caller.key_id  # the key this request came with
    if "key" in key:
        view["key"] = key["key"]
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
    settings: dict[str, Any], ceiling: dict[str, Any], defaults: dict[str, int], *, creating: bool
) -> dict[str, Any]:
    """`settings` checked against the calling key's own (`ceiling`); on create, the rest inherited."""
    out = dict(settings)
    if creating:
        for name in INHERITED:
            out.setdefault(name, ceiling[name])

    def refuse(what: str) -> Forbidden:
        return Forbidden(
            f"{what}: a key cannot get more than the key you are using", code="above_your_limits"
        )

    for name in RATE_LIMITS:
        if name in out and _amount(out[name], defaults[name]) > _amount(ceiling[name], defaults[name]):
            limit = effective_limit(ceiling[name], defaults[name])
            raise refuse(f"{name} may be at most {limit}")
    if "spend_cap" in out and _amount(out["spend_cap"]) > _amount(ceiling["spend_cap"]):
        raise refuse(f"spend_cap may be at most {ceiling['spend_cap']}")
    if "allowed_models" in out and ceiling["allowed_models"] is not None:
        models = out["allowed_models"]
        if models is None or not set(models) <= set(ceiling["allowed_models"]):
            raise refuse(f"allowed_models must be among {', '.join(ceiling['allowed_models'])}")
    given = settings.get("expires_at")
    if given is not None and given <= time.time():
        raise InvalidRequest("expires_at must be in the future")
    if "expires_at" in out and _amount(out["expires_at"]) > _amount(ceiling["expires_at"]):
        raise refuse("expires_at may be no later than your key's")
    return out


async def _calling_key(conn: AsyncConnection, caller: Caller) -> dict[str, Any]:
    rows = await account_store.describe_keys(conn, key_id=caller.key_id)
    if not rows:  # deleted by another request since this one authenticated
        raise Forbidden("this API key no longer exists")
    return rows[0]


async def key_cap(rt: Collaborators, account_id: int) -> int:
    """How many keys the account may hold: the operator's setting, else the server's default."""
    async with rt.db.reader() as conn:
        account = await account_store.get_account_by_id(conn, account_id)
    max_keys = account.max_keys if account is not None else None
    return rt.settings.max_keys_per_account if max_keys is None else max_keys


async def list_keys(rt: Collaborators, caller: Caller) -> list[dict[str, Any]]:
    async with rt.db.reader() as conn:
        rows = await account_store.describe_keys(conn, account_id=caller.account_id)
    return [_view(admin.describe_key([r]), caller) for r in rows]


async def create_key(rt: Collaborators, caller: Caller, settings: dict[str, Any]) -> dict[str, Any]:
    """A new key of the caller's account, shown once; 409 key_cap_reached at the operator's cap."""
    name = settings.pop("name", None) or ""
    if settings.get("disabled") is None:
        settings.pop("disabled", None)
    admin.check_key_settings(settings)
    async with rt.db.transaction() as conn:
        count, max_keys = await account_store.lock_key_count(conn, caller.account_id)
        cap = rt.settings.max_keys_per_account if max_keys is None else max_keys
        if count >= cap:
            raise Conflict(
                f"this account may hold at most {cap} keys; delete one or ask the operator",
                code="key_cap_reached",
            )
        ceiling = await _calling_key(conn, caller)
        values = within(settings, ceiling, _server_defaults(rt), creating=True)
        created = await admin.insert_key(conn, caller.account_id, name, values)
    return _view(created, caller)


async def update_key(
    rt: Collaborators, caller: Caller, key_id: int, settings: dict[str, Any]
) -> dict[str, Any]:
    if not settings:
        raise InvalidRequest("nothing to change")
    admin.check_key_settings(settings)
    if key_id == caller.key_id and settings.get("disabled"):
        raise Conflict("you cannot disable the key you are using; use another key", code="key_in_use")
    async with rt.db.transaction() as conn:
        ceiling = await _calling_key(conn, caller)
        values = within(settings, ceiling, _server_defaults(rt), creating=False)
        if await account_store.update_key(conn, key_id, values, account_id=caller.account_id) is None:
            raise NotFound(f"no key with id {key_id}", code="key_not_found")
        described = admin.describe_key(await account_store.describe_keys(conn, key_id=key_id))
    await rt.key_cache.invalidate()  # after the commit: every process reads the key afresh
    return _view(described, caller)


async def delete_key(rt: Collaborators, caller: Caller, key_id: int) -> None:
    if key_id == caller.key_id:
        raise Conflict("you cannot delete the key you are using; use another key", code="key_in_use")
    async with rt.db.transaction() as conn:
        if not await account_store.delete_key(conn, key_id, caller.account_id):
            raise NotFound(f"no key with id {key_id}", code="key_not_found")
    await rt.key_cache.invalidate()
