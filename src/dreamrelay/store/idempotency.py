"""Idempotency keys: one task per (account, key) for 24 hours, remembered with the request's hash."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

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


async def remember(conn: AsyncConnection, account_id: int, key: str, request_hash: str, task_id: str) -> None:
    """Insert; the unique (account, key) constraint makes a concurrent duplicate fail loudly."""
    await conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.account_id == account_id,
            idempotency_keys.c.key == key,
            idempotency_keys.c.created_at <= time.time() - TTL_SECONDS,
        )
    )
    await conn.execute(
        insert(idempotency_keys).values(
            account_id=account_id, key=key, request_hash=request_hash, task_id=task_id, created_at=time.time()
        )
    )
