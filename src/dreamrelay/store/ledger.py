"""Balances and the ledger: every change of a balance is a row; the database keeps it exactly-once."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay import metrics
from dreamrelay.domain.ranges import MAX_CREDITS
from dreamrelay.store.direct import Sql, Tx
from dreamrelay.store.engine import after_commit
from dreamrelay.store.filters import in_window
from dreamrelay.store.schema import accounts, api_keys, ledger

# Every kind of ledger row, in one place: the operator's top-ups and adjustments, a task's hold and its one
# settlement (capture or release), and a customer's credit-code redemption.
KINDS = ("topup", "hold", "capture", "release", "adjustment", "redeem")


class BalanceTooLow(Exception):
    """The account cannot pay for the hold."""


class BalanceTooHigh(Exception):
    """A top-up would take the balance above MAX_CREDITS."""


class SpendCapReached(Exception):
    """The key's spending cap would be exceeded."""


# A hold's three statements (store/direct.py: on the driver, they run on every submit).
_TAKE = Sql.of("UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?")
_SPEND = Sql.of(
    "UPDATE api_keys SET spent = spent + ? WHERE id = ? AND (spend_cap IS NULL OR spent + ? <= spend_cap)"
)
_HOLD_ROW = Sql.of(
    "INSERT INTO ledger (account_id, task_id, kind, amount, note, created_at) VALUES (?, ?, 'hold', ?, '', ?)"
)


async def hold(tx: Tx, *, account_id: int, key_id: int | None, task_id: str, amount: int) -> None:
    """Take `amount` from the balance for `task_id`; never below zero, even with concurrent holds."""
    if amount <= 0:
        return
    # The conditional UPDATE is the check: two holds cannot both see the same old balance.
    if await tx.run(_TAKE, amount, account_id, amount) != 1:
        raise BalanceTooLow
    if key_id is not None and await tx.run(_SPEND, amount, key_id, amount) != 1:
        raise SpendCapReached
    await tx.run(_HOLD_ROW, account_id, task_id, -amount, time.time())
    tx.after_commit(lambda: _count("hold", amount))


async def capture(conn: AsyncConnection, *, account_id: int, task_id: str, amount: int) -> None:
    """The held credits are earned: a zero-amount row that settles the hold (unique per task)."""
    if amount > 0:
        note = f"captured {amount}"
        await _row(conn, account_id, task_id, "capture", 0, settles=task_id, note=note, credits=amount)


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
    """Add (or, for an adjustment, remove) credits; returns the new balance, within [0, MAX_CREDITS].

    The bound is compared as `balance <= MAX_CREDITS - amount`, so the database never adds past it.
    """
    kind = "topup" if amount > 0 else "adjustment"
    fits = accounts.c.balance <= MAX_CREDITS - amount if amount > 0 else accounts.c.balance >= -amount
    changed = await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id, fits)
        .values(balance=accounts.c.balance + amount)
        .returning(accounts.c.balance)
    )
    row = changed.one_or_none()
    if row is None:
        if amount > 0:
            raise BalanceTooHigh
        raise BalanceTooLow
    await _row(conn, account_id, None, kind, amount, note=note)
    return int(row.balance)


async def redeem(conn: AsyncConnection, account_id: int, amount: int, *, code_id: int, note: str) -> int:
    """Credit a redeemed code; returns the new balance. At most once per code (a unique `settles`)."""
    changed = await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id, accounts.c.balance <= MAX_CREDITS - amount)
        .values(balance=accounts.c.balance + amount)
        .returning(accounts.c.balance)
    )
    row = changed.one_or_none()
    if row is None:
        raise BalanceTooHigh
    balance = int(row.balance)
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
    credits: int | None = None,
) -> None:
    """Insert one ledger row; counted in the metrics once its transaction commits."""
    moved = abs(amount) if credits is None else credits
    after_commit(conn, lambda: _count(kind, moved))
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


def _count(kind: str, credits: int) -> None:
    metrics.LEDGER_ROWS.labels(kind).inc()
    metrics.LEDGER_CREDITS.labels(kind).inc(credits)


@dataclass(frozen=True)
class Mismatch:
    account_id: int
    name: str
    balance: int
    ledger_sum: int


async def verify(conn: AsyncConnection) -> tuple[int, list[Mismatch]]:
    """Accounts checked, and those whose ledger does not sum to their balance.

    PostgreSQL sums BIGINTs as NUMERIC; SQLite's SUM raises on a 64-bit overflow, which the CHECK bounds
    make all but impossible (about a thousand rows at the bound), so there the sums are then made
    exactly in Python instead of failing.
    """
    accounts_rows = (await conn.execute(select(accounts.c.id, accounts.c.name, accounts.c.balance))).all()
    try:
        totals = await _sums_in_store(conn)
    except OperationalError:
        totals = await _sums_in_python(conn)
    bad = [
        Mismatch(r.id, r.name, int(r.balance), totals.get(r.id, 0))
        for r in accounts_rows
        if int(r.balance) != totals.get(r.id, 0)
    ]
    return len(accounts_rows), bad


async def _sums_in_store(conn: AsyncConnection) -> dict[int, int]:
    query = select(ledger.c.account_id, func.sum(ledger.c.amount)).group_by(ledger.c.account_id)
    return {int(r[0]): int(r[1]) for r in await conn.execute(query)}


async def _sums_in_python(conn: AsyncConnection) -> dict[int, int]:
    totals: dict[int, int] = {}
    for account_id, amount in await conn.execute(select(ledger.c.account_id, ledger.c.amount)):
        totals[account_id] = totals.get(account_id, 0) + int(amount)
    return totals


@dataclass(frozen=True)
class Wanted:
    """Which ledger rows `entries` lists (None: any) and which page of them."""

    account_id: int | None = None
    task_id: str | None = None
    kind: str | None = None
    since: float | None = None  # created at or after
    until: float | None = None  # created before
    limit: int = 100
    offset: int = 0


async def entries(conn: AsyncConnection, wanted: Wanted) -> list[dict[str, object]]:
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
    if wanted.account_id is not None:
        query = query.where(ledger.c.account_id == wanted.account_id)
    if wanted.task_id is not None:
        query = query.where(ledger.c.task_id == wanted.task_id)
    if wanted.kind is not None:
        query = query.where(ledger.c.kind == wanted.kind)
    query = in_window(query, ledger.c.created_at, wanted.since, wanted.until)
    rows = await conn.execute(query.order_by(ledger.c.id.desc()).limit(wanted.limit).offset(wanted.offset))
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
