"""Credit codes (stored as SHA-256 hashes only): made in batches by the operator, redeemed once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.store.schema import accounts, credit_codes

STATUSES = ("unused", "used", "expired")


async def insert_codes(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    result = await conn.execute(insert(credit_codes).returning(credit_codes.c.id), rows)
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


async def find(conn: AsyncConnection, code_hash: str) -> dict[str, Any] | None:
    query = select(credit_codes.c.redeemed_at, credit_codes.c.expires_at).where(
        credit_codes.c.code_hash == code_hash
    )
    row = (await conn.execute(query)).one_or_none()
    return dict(row._mapping) if row else None


async def list_codes(
    conn: AsyncConnection, *, batch: str | None, status: str | None, now: float, limit: int, offset: int
) -> list[dict[str, Any]]:
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
    return [dict(r._mapping) for r in rows]
