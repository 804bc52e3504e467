"""What an API key may do, as every request carries it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from dreamrelay.domain.errors import Forbidden

# Keys in one line of descent, the operator's key included: a customer's key may make keys, and those
# keys more, up to this depth (each submit of a key updates every key above it: services/account_keys.py).
MAX_KEY_CHAIN = 8


@dataclass(frozen=True)
class Caller:
    """A key and its account with the key's limits: made once per key read (store/accounts.py), kept
    by the key cache and the console session alike."""

    key_id: int
    account_id: int
    allowed_models: tuple[str, ...] | None = None
    rpm: int | None = None
    max_in_flight: int | None = None
    batch_rpm: int | None = None
    batch_envelope: str = "bare"  # POST /luma/tasks: "bare" array or the "newapi" envelope
    ancestors: tuple[int, ...] = ()  # the keys that made this one, the operator's first (ids never change)

    @property
    def chain(self) -> tuple[int, ...]:
        """This key and every key above it, the operator's first: whose spending caps a charge counts in."""
        return (*self.ancestors, self.key_id)

    def check_model(self, model: str) -> None:
        if self.allowed_models is not None and model not in self.allowed_models:
            raise Forbidden(f"this API key may not use model {model}")


@dataclass(frozen=True, slots=True)
class KeyRow:
    """A key as the store describes it (store/accounts.py describe_keys): its settings, limits and
    usage, never its hash. Times are epoch seconds; `active` is set by `with_active` (services/admin.py)."""

    id: int
    prefix: str
    account: str
    name: str
    disabled: bool
    expires_at: float | None
    spend_cap: int | None
    allowed_models: list[str] | None
    rpm: int | None
    max_in_flight: int | None
    batch_rpm: int | None
    batch_envelope: str
    disabled_by_operator: bool
    spent: int
    parent_id: int | None
    created_at: float
    last_used_at: float | None
    active: bool = False  # whether the key works now: neither it nor a key above it disabled or expired


def active_keys(rows: Iterable[KeyRow], now: float) -> set[int]:
    """The ids of the keys (a key's whole line among `rows`) that work now: neither they nor any key
    above them disabled or expired."""
    by_id = {row.id: row for row in rows}

    def works(row: KeyRow) -> bool:
        expired = row.expires_at is not None and row.expires_at <= now
        return not (row.disabled or row.disabled_by_operator or expired)

    active: set[int] = set()
    for key_id, row in by_id.items():
        current: KeyRow | None = row
        while current is not None and works(current):
            parent_id = current.parent_id
            if parent_id is None:  # the operator's key, reached through working keys only
                active.add(key_id)
                break
            current = by_id.get(parent_id)
    return active


def remaining(keys: Iterable[KeyRow]) -> float:
    """What a line of keys may still spend: inf without any cap."""
    left = math.inf
    for key in keys:
        if key.spend_cap is not None:
            left = min(left, max(0, key.spend_cap - key.spent))
    return left
