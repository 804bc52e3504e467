"""Credit codes (stored as SHA-256 hashes only): made in batches by the operator, redeemed once."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.store.schema import accounts, credit_codes

STATUSES = ("unused", "used", "expired")


@dataclass(frozen=True, slots=True)
class NewCode:
    code_hash: str
    prefix: str  # the code's first characters, shown in lists
    batch: str
    amount: int
    note: str
    created_at: float
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class CodeRow:
    """A code as the operator lists it (never the code: it is not stored)."""

    id: int
    prefix: str
    batch: str
    amount: int
    note: str
    created_at: float
    expires_at: float | None
    redeemed_at: float | None
    redeemed_by: str | None  # the account's name
    redeemed_key_id: int | None


@dataclass(frozen=True, slots=True)
class CodeState:
    redeemed_at: float | None
    expires_at: float | None


async def insert_codes(conn: AsyncConnection, rows: list[NewCode]) -> list[int]:
    result = await conn.execute(insert(credit_codes).returning(credit_codes.c.id), [asdict(r) for r in rows])
    return [int(r.id) for r in result]


async def take(
    conn: AsyncConnection, code_hash: str, *, account_id: int, key_id: int, now: float
) -> tuple[int, int] | None:
    """Mark an unused, unexpired code redeemed by the account: (id, amount), or None.

    The conditional UPDATE is the check: of concurrent redemptions exactly one changes the row.
    """
    taken = await conn.execute(
        update(credit_codes)
        .where(
            credit_codes.c.code_hash == code_hash,
            credit_codes.c.redeemed_at.is_(None),
            or_(credit_codes.c.expires_at.is_(None), credit_codes.c.expires_at > now),
        )
        .values(redeemed_at=now, redeemed_by=account_id, redeemed_key_id=key_id)
        .returning(credit_codes.c.id, credit_codes.c.amount)
    )
    row = taken.one_or_none()
    return (int(row.id), int(row.amount)) if row else None


async def find(conn: AsyncConnection, code_hash: str) -> CodeState | None:
    query = select(credit_codes.c.redeemed_at, credit_codes.c.expires_at).where(
        credit_codes.c.code_hash == code_hash
    )
    row = (await conn.execute(query)).one_or_none()
    return CodeState(**row._mapping) if row else None


async def list_codes(
    conn: AsyncConnection, *, batch: str | None, status: str | None, now: float, limit: int, offset: int
) -> list[CodeRow]:
    """Codes, newest first, with who redeemed them (account name) and when."""
    query = select(
        credit_codes.c.id,
        credit_codes.c.prefix,
        credit_codes.c.batch,
        credit_codes.c.amount,
        credit_codes.c.note,
        credit_codes.c.created_at,
        credit_codes.c.expires_at,
        credit_codes.c.redeemed_at,
        accounts.c.name.label("redeemed_by"),
        credit_codes.c.redeemed_key_id,
    ).outerjoin(accounts, accounts.c.id == credit_codes.c.redeemed_by)
    if batch is not None:
        query = query.where(credit_codes.c.batch == batch)
    unused = credit_codes.c.redeemed_at.is_(None)
    if status == "used":
        query = query.where(~unused)
    elif status == "unused":
        query = query.where(unused, or_(credit_codes.c.expires_at.is_(None), credit_codes.c.expires_at > now))
    elif status == "expired":
        query = query.where(and_(unused, credit_codes.c.expires_at <= now))
    rows = await conn.execute(query.order_by(credit_codes.c.id.desc()).limit(limit).offset(offset))
    return [CodeRow(**r._mapping) for r in rows]
