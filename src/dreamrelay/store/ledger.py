"""Balances and the ledger: every change of a balance is a row; the database keeps it exactly-once."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.store.schema import accounts, api_keys, ledger

# Every kind of ledger row, in one place: the operator's top-ups and adjustments, a task's hold and its one
# settlement (capture or release), and a customer's credit-code redemption.
KINDS = ("topup", "hold", "capture", "release", "adjustment", "redeem")


class BalanceTooLow(Exception):
    """The account cannot pay for the hold."""


class SpendCapReached(Exception):
    """The key's spending cap would be exceeded."""


async def hold(
    conn: AsyncConnection, *, account_id: int, key_id: int | None, task_id: str, amount: int
) -> None:
    """Take `amount` from the balance for `task_id`; never below zero, even with concurrent holds."""
    if amount <= 0:
        return
    # The conditional UPDATE is the check: two holds cannot both see the same old balance.
    taken = await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id, accounts.c.balance >= amount)
        .values(balance=accounts.c.balance - amount)
    )
    if taken.rowcount != 1:
        raise BalanceTooLow
    if key_id is not None:
        capped = await conn.execute(
            update(api_keys)
            .where(
                api_keys.c.id == key_id,
                (api_keys.c.spend_cap.is_(None)) | (api_keys.c.spent + amount <= api_keys.c.spend_cap),
            )
            .values(spent=api_keys.c.spent + amount)
        )
        if capped.rowcount != 1:
            raise SpendCapReached
    await _row(conn, account_id, task_id, "hold", -amount)


async def capture(conn: AsyncConnection, *, account_id: int, task_id: str, amount: int) -> None:
    """The held credits are earned: a zero-amount row that settles the hold (unique per task)."""
    if amount > 0:
        await _row(conn, account_id, task_id, "capture", 0, settles=task_id, note=f"captured {amount}")


async def release(
    conn: AsyncConnection, *, account_id: int, key_id: int | None, task_id: str, amount: int, note: str = ""
) -> None:
    """Give the held credits back (unique per task: a second release fails the whole transaction)."""
    if amount <= 0:
        return
    await _row(conn, account_id, task_id, "release", amount, settles=task_id, note=note)
    await conn.execute(
        update(accounts).where(accounts.c.id == account_id).values(balance=accounts.c.balance + amount)
    )
    if key_id is not None:
        await conn.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(spent=api_keys.c.spent - amount)
        )


async def top_up(conn: AsyncConnection, account_id: int, amount: int, note: str = "") -> int:
    """Add (or, for an adjustment, remove) credits; returns the new balance. Never below zero."""
    kind = "topup" if amount > 0 else "adjustment"
    changed = await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id, accounts.c.balance + amount >= 0)
        .values(balance=accounts.c.balance + amount)
        .returning(accounts.c.balance)
    )
    row = changed.one_or_none()
    if row is None:
        raise BalanceTooLow
    await _row(conn, account_id, None, kind, amount, note=note)
    return int(row.balance)


async def redeem(conn: AsyncConnection, account_id: int, amount: int, *, code_id: int, note: str) -> int:
    """Credit a redeemed code; returns the new balance. At most once per code (a unique `settles`)."""
    changed = await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(balance=accounts.c.balance + amount)
        .returning(accounts.c.balance)
    )
    balance = int(changed.one().balance)
    await _row(conn, account_id, None, "redeem", amount, settles=f"code:{code_id}", note=note)
    return balance


async def _row(
    conn: AsyncConnection,
    account_id: int,
    task_id: str | None,
    kind: str,
    amount: int,
    *,
    settles: str | None = None,
    note: str = "",
) -> None:
    await conn.execute(
        insert(ledger).values(
            account_id=account_id,
            task_id=task_id,
            kind=kind,
            amount=amount,
            settles=settles,
            note=note,
            created_at=time.time(),
        )
    )


@dataclass(frozen=True)
class Mismatch:
    account_id: int
    name: str
    balance: int
    ledger_sum: int


async def verify(conn: AsyncConnection) -> tuple[int, list[Mismatch]]:
    """Accounts checked, and those whose ledger does not sum to their balance."""
    sums = (
        select(ledger.c.account_id, func.coalesce(func.sum(ledger.c.amount), 0).label("total"))
        .group_by(ledger.c.account_id)
        .subquery()
    )
    query = select(
        accounts.c.id, accounts.c.name, accounts.c.balance, func.coalesce(sums.c.total, 0)
    ).outerjoin(sums, sums.c.account_id == accounts.c.id)
    rows = (await conn.execute(query)).all()
    bad = [Mismatch(r[0], r[1], int(r[2]), int(r[3])) for r in rows if int(r[2]) != int(r[3])]
    return len(rows), bad


async def entries(
    conn: AsyncConnection,
    *,
    account_id: int | None = None,
    task_id: str | None = None,
    kind: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, object]]:
    """Ledger rows, newest first, with the account's name."""
    query = select(
        ledger.c.id,
        accounts.c.name.label("account"),
        ledger.c.task_id,
        ledger.c.kind,
        ledger.c.amount,
        ledger.c.note,
        ledger.c.created_at,
    ).join(accounts, accounts.c.id == ledger.c.account_id)
    if account_id is not None:
        query = query.where(ledger.c.account_id == account_id)
    if task_id is not None:
        query = query.where(ledger.c.task_id == task_id)
    if kind is not None:
        query = query.where(ledger.c.kind == kind)
    if since is not None:
        query = query.where(ledger.c.created_at >= since)
    if until is not None:
        query = query.where(ledger.c.created_at < until)
    rows = await conn.execute(query.order_by(ledger.c.id.desc()).limit(limit).offset(offset))
    return [dict(r._mapping) for r in rows]


async def captured(conn: AsyncConnection, *, since: float | None = None) -> int:
    """Credits earned: the holds of tasks whose hold was captured (since `since`, by capture time).

    Read from the ledger's small rows through its (task_id, kind) index, never from the tasks table.
    """
    capture, hold = ledger.alias("capture"), ledger.alias("hold")
    query = (
        select(func.coalesce(func.sum(hold.c.amount), 0))
        .select_from(capture)
        .join(hold, (hold.c.task_id == capture.c.task_id) & (hold.c.kind == "hold"))
        .where(capture.c.kind == "capture")
    )
    if since is not None:
        query = query.where(capture.c.created_at >= since)
    return -int((await conn.execute(query)).scalar_one())
