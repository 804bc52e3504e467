"""Idempotency keys: one task per (account, key) for 24 hours, remembered with the request's hash."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.store.direct import Sql, Tx
from dreamrelay.store.schema import idempotency_keys

TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Remembered:
    request_hash: str
    task_id: str


async def find(conn: AsyncConnection, account_id: int, key: str) -> Remembered | None:
    row = (
        await conn.execute(
            select(idempotency_keys.c.request_hash, idempotency_keys.c.task_id).where(
                idempotency_keys.c.account_id == account_id,
                idempotency_keys.c.key == key,
                idempotency_keys.c.created_at > time.time() - TTL_SECONDS,
            )
        )
    ).one_or_none()
    return Remembered(row.request_hash, row.task_id) if row else None


_FORGET_EXPIRED = Sql.of("DELETE FROM idempotency_keys WHERE account_id = ? AND key = ? AND created_at <= ?")
_REMEMBER = Sql.of(
    "INSERT INTO idempotency_keys (account_id, key, request_hash, task_id, created_at) VALUES (?, ?, ?, ?, ?)"
)


async def remember(tx: Tx, account_id: int, key: str, request_hash: str, task_id: str) -> None:
    """Insert; the unique (account, key) constraint makes a concurrent duplicate fail loudly."""
    now = time.time()
    await tx.run(_FORGET_EXPIRED, account_id, key, now - TTL_SECONDS)
    await tx.run(_REMEMBER, account_id, key, request_hash, task_id, now)
