"""Accounts and their API keys (stored as SHA-256 hashes only)."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import CTE

from dreamrelay.domain.keys import Caller, KeyRow
from dreamrelay.domain.signing import new_secret
from dreamrelay.store.direct import Sql, Tx
from dreamrelay.store.schema import accounts, api_keys

KEY_PREFIX = "dr-"


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    balance: int
    created_at: float
    max_keys: int | None = None  # keys the customer may hold; None = the server's default


@dataclass(frozen=True)
class KeyOwner:
    """What authentication learns about a key: enough to serve a request without another query.

    `disabled` and `expires_at` are the line's: a key is disabled if it or any key above it is (by the
    customer or by the operator), and expires with the first of them to expire.
    """

    caller: Caller
    disabled: bool
    expires_at: float | None = None


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(30)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_account(conn: AsyncConnection, name: str) -> Account:
    now = time.time()
    row = (
        await conn.execute(
            insert(accounts).values(name=name, balance=0, created_at=now).returning(accounts.c.id)
        )
    ).one()
    return Account(id=row.id, name=name, balance=0, created_at=now)


async def get_account(conn: AsyncConnection, name: str) -> Account | None:
    row = (await conn.execute(select(accounts).where(accounts.c.name == name))).one_or_none()
    return Account(row.id, row.name, row.balance, row.created_at, row.max_keys) if row else None


async def list_accounts(conn: AsyncConnection) -> list[Account]:
    rows = await conn.execute(select(accounts).order_by(accounts.c.id))
    return [Account(r.id, r.name, r.balance, r.created_at, r.max_keys) for r in rows]


async def count_accounts(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(accounts))).scalar_one())


async def create_key(
    conn: AsyncConnection, account_id: int, name: str = "", *, parent_id: int | None = None
) -> tuple[int, str]:
    """Store a new key's hash; return (key id, the key). The key is never readable again.

    `parent_id`: the key that creates it (a customer's); None for the operator's keys.
    """
    key = new_api_key()
    row = (
        await conn.execute(
            insert(api_keys)
            .values(
                account_id=account_id,
                key_hash=hash_key(key),
                prefix=key[:10],
                name=name,
                disabled=False,
                created_at=time.time(),
                parent_id=parent_id,
            )
            .returning(api_keys.c.id)
        )
    ).one()
    return row.id, key


# What a key may do, read wherever a key is signed in (the API's auth, the console's session).
KEY_LIMITS = (
    api_keys.c.id,
    api_keys.c.account_id,
    api_keys.c.disabled,
    api_keys.c.expires_at,
    api_keys.c.allowed_models,
    api_keys.c.rpm,
    api_keys.c.max_in_flight,
    api_keys.c.batch_rpm,
    api_keys.c.batch_envelope,
)


def caller_of(row: Any, ancestors: tuple[int, ...] = ()) -> Caller:
    """The Caller of a row that selected KEY_LIMITS."""
    return Caller(
        key_id=row.id,
        account_id=row.account_id,
        allowed_models=tuple(row.allowed_models) if row.allowed_models is not None else None,
        rpm=row.rpm,
        max_in_flight=row.max_in_flight,
        batch_rpm=row.batch_rpm,
        batch_envelope=row.batch_envelope,
        ancestors=ancestors,
    )


def _line(start: ColumnElement[bool]) -> CTE:
    """The key matching `start` and every key above it, each with its depth (0: the key itself).

    A parent is always an older key and never changes, so the line ends at an operator's key."""
    chain = (
        select(api_keys.c.id, api_keys.c.parent_id, literal(0, Integer).label("depth"))
        .where(start)
        .cte("line", recursive=True)
    )
    above = api_keys.alias("above")
    return chain.union_all(
        select(above.c.id, above.c.parent_id, chain.c.depth + 1).where(above.c.id == chain.c.parent_id)
    )


async def _owner(conn: AsyncConnection, start: ColumnElement[bool]) -> KeyOwner | None:
    """A key read with the line above it: the state of every key in it, in one query."""
    line = _line(start)
    query = (
        select(*KEY_LIMITS, api_keys.c.disabled_by_operator)
        .join(line, line.c.id == api_keys.c.id)
        .order_by(line.c.depth)
    )
    rows = (await conn.execute(query)).all()
    if not rows:
        return None
    expiries = [r.expires_at for r in rows if r.expires_at is not None]
    return KeyOwner(
        caller=caller_of(rows[0], tuple(r.id for r in reversed(rows[1:]))),
        disabled=any(r.disabled or r.disabled_by_operator for r in rows),
        expires_at=min(expiries, default=None),
    )


async def find_key(conn: AsyncConnection, key_hash: str) -> KeyOwner | None:
    return await _owner(conn, api_keys.c.key_hash == key_hash)


async def key_by_id(conn: AsyncConnection, key_id: int) -> KeyOwner | None:
    return await _owner(conn, api_keys.c.id == key_id)


async def line(conn: AsyncConnection, key_id: int) -> list[int]:
    """The ids of the key and every key above it, the operator's first; [] for an unknown key."""
    chain = _line(api_keys.c.id == key_id)
    return [int(r.id) for r in await conn.execute(select(chain.c.id).order_by(chain.c.depth.desc()))]


async def list_keys(conn: AsyncConnection) -> list[dict[str, object]]:
    query = (
        select(
            api_keys.c.id,
            api_keys.c.prefix,
            api_keys.c.name,
            api_keys.c.disabled,
            api_keys.c.created_at,
            api_keys.c.last_used_at,
            accounts.c.name.label("account"),
        )
        .join(accounts, accounts.c.id == api_keys.c.account_id)
        .order_by(api_keys.c.id)
    )
    return [dict(r._mapping) for r in await conn.execute(query)]


async def touch_keys(conn: AsyncConnection, used_at: dict[int, float]) -> None:
    for key_id, when in sorted(used_at.items()):  # rows locked in id order, as holds lock them
        await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=when))


_SECRETS = Sql.of(
    "SELECT callback_secret, previous_callback_secret, previous_secret_until FROM accounts WHERE id = ?"
)
_FIRST_SECRET = Sql.of("UPDATE accounts SET callback_secret = ? WHERE id = ? AND callback_secret IS NULL")
_ROTATE = Sql.of(
    "UPDATE accounts SET callback_secret = ?, previous_callback_secret = ?, previous_secret_until = ?"
    " WHERE id = ?"
)


async def callback_secrets(tx: Tx, account_id: int, now: float) -> list[str]:
    """Secrets to sign with: the current one (made on first need) and, within its grace, the previous."""
    current, previous, previous_until = (await tx.rows(_SECRETS, account_id))[0]
    if current is None:
        current = new_secret()
        if not await tx.run(_FIRST_SECRET, current, account_id):  # another transaction made one first
            current = (await tx.rows(_SECRETS, account_id))[0][0]
    keep_previous = previous and (previous_until or 0) > now
    return [current, previous] if keep_previous else [current]


async def rotate_callback_secret(tx: Tx, account_id: int, grace_seconds: float) -> str:
    """A new secret; the old one keeps signing (alongside) for `grace_seconds` so receivers can switch."""
    now = time.time()
    old = await callback_secrets(tx, account_id, now)
    fresh = new_secret()
    await tx.run(_ROTATE, fresh, old[0], now + grace_seconds, account_id)
    return fresh


async def get_account_by_id(conn: AsyncConnection, account_id: int) -> Account | None:
    row = (await conn.execute(select(accounts).where(accounts.c.id == account_id))).one_or_none()
    return Account(row.id, row.name, row.balance, row.created_at, row.max_keys) if row else None


KEY_SETTINGS = (
    "name",
    "disabled",
    "expires_at",
    "spend_cap",
    "allowed_models",
    "rpm",
    "max_in_flight",
    "batch_rpm",
    "batch_envelope",
    "disabled_by_operator",
)


async def describe_keys(
    conn: AsyncConnection,
    *,
    account_id: int | None = None,
    key_id: int | None = None,
    key_ids: Sequence[int] | None = None,
) -> list[KeyRow]:
    """Keys with their limits and usage, never their hashes; oldest first."""
    query = select(
        api_keys.c.id,
        api_keys.c.prefix,
        accounts.c.name.label("account"),
        *(api_keys.c[name] for name in KEY_SETTINGS),
        api_keys.c.spent,
        api_keys.c.parent_id,
        api_keys.c.created_at,
        api_keys.c.last_used_at,
    ).join(accounts, accounts.c.id == api_keys.c.account_id)
    if account_id is not None:
        query = query.where(api_keys.c.account_id == account_id)
    if key_id is not None:
        query = query.where(api_keys.c.id == key_id)
    if key_ids is not None:
        query = query.where(api_keys.c.id.in_(key_ids))
    return [KeyRow(**r._mapping) for r in await conn.execute(query.order_by(api_keys.c.id))]


async def update_key(
    conn: AsyncConnection, key_id: int, values: dict[str, object], *, account_id: int | None = None
) -> str | None:
    """Change a key's settings (names from KEY_SETTINGS); returns its hash (to drop from caches) or None.

    With `account_id`, only a key of that account is changed (a customer's own keys).
    """
    unknown = set(values) - set(KEY_SETTINGS)
    if unknown:
        raise ValueError(f"not key settings: {sorted(unknown)}")
    query = update(api_keys).where(api_keys.c.id == key_id)
    if account_id is not None:
        query = query.where(api_keys.c.account_id == account_id)
    row = (await conn.execute(query.values(**values).returning(api_keys.c.key_hash))).one_or_none()
    return str(row.key_hash) if row else None


async def delete_key(conn: AsyncConnection, key_id: int, account_id: int) -> bool:
    """Remove a key of the account for good, and with it every key below it (the foreign key's
    ON DELETE CASCADE); their tasks keep running, their key id becomes null."""
    query = delete(api_keys).where(api_keys.c.id == key_id, api_keys.c.account_id == account_id)
    return bool((await conn.execute(query)).rowcount)


async def lock_key_count(conn: AsyncConnection, account_id: int) -> tuple[int, int | None]:
    """(keys the account holds, its max_keys), the account row locked so two creates cannot both fit."""
    locked = select(accounts.c.max_keys).where(accounts.c.id == account_id).with_for_update()
    max_keys = (await conn.execute(locked)).scalar_one()
    count = select(func.count()).select_from(api_keys).where(api_keys.c.account_id == account_id)
    return int((await conn.execute(count)).scalar_one()), max_keys


async def set_max_keys(conn: AsyncConnection, account_id: int, max_keys: int | None) -> None:
    await conn.execute(update(accounts).where(accounts.c.id == account_id).values(max_keys=max_keys))
