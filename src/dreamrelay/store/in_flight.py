"""Each key's tasks in flight (pending or processing), kept as a number on its row (`api_keys.in_flight`).

The in-flight cap used to count the key's tasks (`LIMIT cap` over the (api_key_id, state) index), twice a
submit: its cost grew with the tasks in flight up to the cap. Now the number is kept where the tasks
change, in the same transactions:

- `enter`: the insert's transaction (with the hold, store/ledger.py::hold), one conditional UPDATE that is
  the cap's check as well: two submits cannot both take the last place (PostgreSQL re-reads the row it
  waited for; SQLite has one writer at a time), whichever process they run in;
- `leave`: the one state writer (services/lifecycle.py), in the transaction that moves the task to a
  terminal state (completed or failed: a refund, a deadline, a delete while running all end that way).
  States only move forward (domain/states.py), so a task leaves once.

A task whose key is deleted has no key (api_key_id set null): neither number counts it. `mismatches`
recounts every key from the tasks (an operator's check, like `ledger verify`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.domain.states import ACTIVE_STATES
from dreamrelay.store.direct import Reads, Sql, Tx
from dreamrelay.store.schema import api_keys, tasks

_ENTER = Sql.of("UPDATE api_keys SET in_flight = in_flight + 1 WHERE id = ?")
_ENTER_BELOW = Sql.of("UPDATE api_keys SET in_flight = in_flight + 1 WHERE id = ? AND in_flight < ?")
_ENTER_MANY = Sql.of("UPDATE api_keys SET in_flight = in_flight + ? WHERE id = ?")
_LEAVE = Sql.of("UPDATE api_keys SET in_flight = in_flight - 1 WHERE id = ? AND in_flight > 0")
_COUNT = Sql.of("SELECT in_flight FROM api_keys WHERE id = ?")


async def count(tx: Reads, key_id: int) -> int:
    """The key's tasks in flight (0 for a key that is gone)."""
    found = await tx.rows(_COUNT, key_id)
    return int(found[0][0]) if found else 0


async def enter(tx: Tx, key_id: int, cap: int | None) -> bool:
    """One more task of the key in flight, only while it has fewer than `cap` (None: no cap). False when
    the cap is reached: the caller rolls the transaction back."""
    if cap is None:
        await tx.run(_ENTER, key_id)
        return True
    return await tx.run(_ENTER_BELOW, key_id, cap) == 1


async def enter_many(tx: Tx, counts: dict[int, int]) -> None:
    """`counts[key]` more tasks of each key in flight (a bulk insert of tasks: bench seeding)."""
    await tx.run_many(_ENTER_MANY, [(n, key_id) for key_id, n in sorted(counts.items())])


async def leave(tx: Tx, key_id: int | None) -> None:
    """A task of the key reached a terminal state (no key: nothing to count)."""
    if key_id is not None:
        await tx.run(_LEAVE, key_id)


@dataclass(frozen=True)
class Mismatch:
    key_id: int
    kept: int  # api_keys.in_flight
    counted: int  # its tasks pending or processing


async def mismatches(conn: AsyncConnection) -> tuple[int, list[Mismatch]]:
    """Keys checked, and those whose kept number differs from a count of their tasks in flight. One
    statement, so one snapshot: a task finishing meanwhile moves its state and its key's number together."""
    counts = (
        select(tasks.c.api_key_id, func.count().label("n"))
        .where(tasks.c.api_key_id.is_not(None), tasks.c.state.in_([s.value for s in ACTIVE_STATES]))
        .group_by(tasks.c.api_key_id)
        .subquery()
    )
    counted = func.coalesce(counts.c.n, 0)
    rows = (
        await conn.execute(
            select(api_keys.c.id, api_keys.c.in_flight, counted, func.count().over()).select_from(
                api_keys.outerjoin(counts, counts.c.api_key_id == api_keys.c.id)
            )
        )
    ).all()
    checked = int(rows[0][3]) if rows else 0
    return checked, [Mismatch(int(r[0]), int(r[1]), int(r[2])) for r in rows if int(r[1]) != int(r[2])]
