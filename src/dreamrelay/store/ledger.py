"""Balances and the ledger: every change of a balance is a row; the database keeps it exactly-once."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay import metrics
from dreamrelay.domain.ranges import MAX_CREDITS
from dreamrelay.domain.states import settled
from dreamrelay.store import in_flight, spend_caps
from dreamrelay.store.direct import Reads, Sql, Tx
from dreamrelay.store.engine import after_commit
from dreamrelay.store.filters import in_window
from dreamrelay.store.schema import accounts, ledger

# Every kind of ledger row, in one place: the operator's top-ups and adjustments, a task's hold and its one
# settlement (capture or release), and a customer's credit-code redemption.
KINDS = ("topup", "hold", "capture", "release", "adjustment", "redeem")


class BalanceTooLow(Exception):
    """The account cannot pay for the hold."""


class BalanceTooHigh(Exception):
    """A top-up would take the balance above MAX_CREDITS."""


class SpendCapReached(Exception):
    """The spending cap of the key, or of a key above it, would be exceeded."""


class TooManyInFlight(Exception):
    """The key already has as many tasks pending or processing as it may."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"{cap} tasks in flight")
        self.cap = cap


# Admission's reads (before anything costly), and a hold's statements; all on the driver
# (store/direct.py), where every submit runs them; the key's spending is store/spend_caps.py's, one
# UPDATE per key of its line. Capture and release use the same API (`Tx`), on the transition's own
# connection (store/engine.py::on_connection).
_BALANCE = Sql.of("SELECT balance FROM accounts WHERE id = ?")
_TAKE = Sql.of("UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?")
_HOLD_ROW = Sql.of(
    "INSERT INTO ledger (account_id, task_id, kind, amount, note, created_at) VALUES (?, ?, 'hold', ?, '', ?)"
)
_SETTLE_ROW = Sql.of(
    "INSERT INTO ledger (account_id, task_id, kind, amount, settles, note, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_GIVE_BACK = Sql.of("UPDATE accounts SET balance = balance + ? WHERE id = ?")


async def admissible(
    tx: Reads,
    *,
    account_id: int,
    key_line: Sequence[int],
    price: int,
    in_flight_cap: int | None,
    also_in_flight: int = 0,
) -> None:
    """Admission's rule, read before anything costly (fetching and decoding images): the balance covers
    `price`, every spending cap along `key_line` (the keys above the key, then the key: `Caller.chain`) has
    room for it, and
    the key has fewer than `in_flight_cap` tasks in flight (None: no cap), counting `also_in_flight`
    submits of it still fetching their sources. `hold` applies the same rule atomically."""
    if price > 0:
        balance = await tx.rows(_BALANCE, account_id)
        if not balance or balance[0][0] < price:
            raise BalanceTooLow
        if not await spend_caps.fits(tx, key_line, price):
            raise SpendCapReached
    await _check_in_flight(tx, key_line[-1], in_flight_cap, also_in_flight)


async def hold(
    tx: Tx,
    *,
    account_id: int,
    key_line: Sequence[int],
    task_id: str,
    amount: int,
    in_flight_cap: int | None = None,
) -> None:
    """Take `amount` from the balance for `task_id`; never below zero, even with concurrent holds; it
    counts against every spending cap along `key_line` (the keys above the submitting key, then the key);
    then the task enters the key's in-flight number, within its cap (`in_flight_cap`, None: none), in the
    same transaction (store/in_flight.py)."""
    if amount > 0:
        # The conditional UPDATE is the check: two holds cannot both see the same old balance.
        if await tx.run(_TAKE, amount, account_id, amount) != 1:
            raise BalanceTooLow
        if not await spend_caps.take(tx, key_line, amount):
            raise SpendCapReached
        await tx.run(_HOLD_ROW, account_id, task_id, -amount, time.time())
        tx.after_commit(lambda: _count("hold", amount))
    if key_line and not await in_flight.enter(tx, key_line[-1], in_flight_cap):
        assert in_flight_cap is not None
        raise TooManyInFlight(in_flight_cap)


async def _check_in_flight(tx: Reads, key_id: int, cap: int | None, also: int = 0) -> None:
    """The key's tasks in flight (and `also` more: its submits still fetching) are below its cap: one
    row's number (store/in_flight.py), whatever the tasks in flight."""
    if cap is not None and await in_flight.count(tx, key_id) + also >= cap:
        raise TooManyInFlight(cap)


async def capture(
    tx: Tx, *, account_id: int, key_id: int | None, task_id: str, amount: int, charge: int | None = None
) -> None:
    """The held credits are earned, or the part the task used (`charge`, domain/states.py::settled):
    a zero-amount row settles the hold (unique per task), and in the same transaction the rest goes
    back as a release row that settles nothing (at most one per task: `uq_ledger_task_kind`)."""
    if amount <= 0:
        return
    captured, released = settled(amount, charge)
    note = f"captured {captured}" if not released else f"captured {captured} of {amount}"
    await _settle(tx, account_id, task_id, "capture", 0, note=note, credits=captured)
    if released:
        tx.after_commit(lambda: _count("release", released))
        await tx.run(_SETTLE_ROW, account_id, task_id, "release", released, None, "unused", time.time())
        await tx.run(_GIVE_BACK, released, account_id)
        if key_id is not None:
            await spend_caps.give_back(tx, key_id, released)


async def release(
    tx: Tx, *, account_id: int, key_id: int | None, task_id: str, amount: int, note: str = ""
) -> None:
    """Give the held credits back (unique per task: a second release fails the whole transaction)."""
    if amount <= 0:
        return
    await _settle(tx, account_id, task_id, "release", amount, note=note, credits=amount)
    await tx.run(_GIVE_BACK, amount, account_id)
    if key_id is not None:
        await spend_caps.give_back(tx, key_id, amount)


async def _settle(
    tx: Tx, account_id: int, task_id: str, kind: str, amount: int, *, note: str, credits: int
) -> None:
    """The one row that settles `task_id`'s hold (`settles` is unique); counted once it commits."""
    tx.after_commit(lambda: _count(kind, credits))
    await tx.run(_SETTLE_ROW, account_id, task_id, kind, amount, task_id, note, time.time())


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
    """Credits earned: the holds of tasks whose hold was captured, less any unused part given back (since
    `since`, by capture time).

    Read from the ledger's small rows through its (task_id, kind) index, never from the tasks table.
    """
    capture, hold, rest = ledger.alias("capture"), ledger.alias("hold"), ledger.alias("rest")
    query = (
        select(func.coalesce(func.sum(hold.c.amount), 0) + func.coalesce(func.sum(rest.c.amount), 0))
        .select_from(capture)
        .join(hold, (hold.c.task_id == capture.c.task_id) & (hold.c.kind == "hold"))
        # A capture of part of the hold gave the rest back (a release row beside the capture).
        .outerjoin(rest, (rest.c.task_id == capture.c.task_id) & (rest.c.kind == "release"))
        .where(capture.c.kind == "capture")
    )
    if since is not None:
        query = query.where(capture.c.created_at >= since)
    return -int((await conn.execute(query)).scalar_one())
