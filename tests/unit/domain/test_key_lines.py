"""A key works only while every key above it works; a line's spending room is its tightest cap."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from dreamrelay.domain.keys import Caller, KeyRow, active_keys, remaining


def _key(key_id: int, parent_id: int | None = None, **state: Any) -> KeyRow:
    row = KeyRow(
        id=key_id,
        prefix=f"dr_{key_id}",
        account="demo",
        name="",
        disabled=False,
        expires_at=None,
        spend_cap=None,
        allowed_models=None,
        rpm=None,
        max_in_flight=None,
        batch_rpm=None,
        batch_envelope="bare",
        disabled_by_operator=False,
        spent=0,
        parent_id=parent_id,
        created_at=0.0,
        last_used_at=None,
    )
    return replace(row, **state)


def test_a_disabled_or_expired_key_stops_every_key_below_it() -> None:
    rows = [
        _key(1, None),
        _key(2, 1, disabled_by_operator=True),
        _key(3, 2),
        _key(4, 1, expires_at=100.0),
        _key(5, 4),
        _key(6, 1),
        _key(7, 99),  # a parent not among the rows: not known to work
    ]
    assert active_keys(rows, now=50.0) == {1, 4, 5, 6}
    assert active_keys(rows, now=150.0) == {1, 6}


def test_the_room_of_a_line_is_its_tightest_cap_left() -> None:
    assert remaining([_key(1, spend_cap=None, spent=5)]) == math.inf
    line = [
        _key(1, spend_cap=100, spent=70),
        _key(2, spend_cap=50, spent=10),
        _key(3, spend_cap=None, spent=0),
    ]
    assert remaining(line) == 30
    assert remaining([_key(1, spend_cap=10, spent=40)]) == 0  # a cap lowered below what was spent


def test_a_callers_chain_is_its_ancestors_then_itself() -> None:
    assert Caller(key_id=9, account_id=1, ancestors=(1, 4)).chain == (1, 4, 9)
    assert Caller(key_id=1, account_id=1).chain == (1,)
