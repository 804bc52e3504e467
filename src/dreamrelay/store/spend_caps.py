"""The spending-cap rule, in one place: what a key spends counts against its own cap and against the
cap of every key above it (the key that made it, and so on up to the operator's key).

Each key's `spent` is what it and every key below it have spent (held and captured, net of releases), so
deleting a key below gives nothing back to the keys above. A charge adds to `spent` along the whole line
with one conditional UPDATE per key, which is the check: two concurrent charges cannot both pass a cap
(PostgreSQL re-reads a row it waited for; SQLite has one writer at a time). The rows are taken in id order
(a parent is always older than its children), so concurrent charges along lines that share keys lock
them in the same order and never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence

from dreamrelay.store.direct import Reads, Sql, Tx

_SPEND = Sql.of(
    "UPDATE api_keys SET spent = spent + ? WHERE id = ? AND (spend_cap IS NULL OR spent + ? <= spend_cap)"
)
_CAP = Sql.of("SELECT spend_cap, spent FROM api_keys WHERE id = ?")


async def take(tx: Tx, line: Sequence[int], amount: int) -> bool:
    """Add `amount` to the spending of every key in `line` (a key and those above it), each within its
    cap. False if any cap would be passed: the caller then rolls the transaction back."""
    for key_id in sorted(line):
        if await tx.run(_SPEND, amount, key_id, amount) != 1:
            return False
    return True


async def fits(tx: Reads, line: Sequence[int], amount: int) -> bool:
    """Whether `amount` fits every cap along `line` now (the early check; `take` decides)."""
    for key_id in line:
        found = await tx.rows(_CAP, key_id)
        if found and found[0][0] is not None and found[0][1] + amount > found[0][0]:
            return False
    return True


# The key and every key above it (store/accounts.py::_line, on the driver-statement API).
_LINE = Sql.of(
    "WITH RECURSIVE line(id, parent_id) AS (SELECT id, parent_id FROM api_keys WHERE id = ?"
    " UNION ALL SELECT above.id, above.parent_id FROM api_keys AS above"
    " JOIN line ON above.id = line.parent_id)"
    " SELECT id FROM line"
)
_UNSPEND = Sql.of("UPDATE api_keys SET spent = spent - ? WHERE id = ?")


async def give_back(tx: Tx, key_id: int, amount: int) -> None:
    """A released hold: `amount` off the spending of the key and every key above it (in id order)."""
    for line_key in sorted(int(row[0]) for row in await tx.rows(_LINE, key_id)):
        await tx.run(_UNSPEND, amount, line_key)
