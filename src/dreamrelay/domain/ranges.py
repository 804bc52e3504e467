"""The documented range of every number a client or operator can send: money, limits, ids, times.

One place for each bound. Request schemas use them for validation and for the OpenAPI document; the
services check them again (the CLI and the console reach the services without a schema). A value
outside its range is a 400 `invalid_request` naming the field and the range. The store's CHECK
constraints (migration 0007) hold the wider `STORE_MAX_CREDITS`, so nothing can overflow a column or
a sum even if a path forgot its check.
"""

from __future__ import annotations

import math

from dreamrelay.domain.errors import InvalidRequest

MAX_CREDITS = 10**15  # one top-up, adjustment, opening balance or spend cap; and a balance's ceiling
MAX_PRICE = 10**9  # credits per unit (a video, an image) of one price rule
STORE_MAX_CREDITS = 2**53  # CHECK bound of balances, ledger amounts and task prices (a JSON-safe integer)
MAX_LIMIT = 1_000_000  # a key's rpm, batch_rpm and max_in_flight (0 = no limit)
MAX_INT32_ID = 2**31 - 1  # key ids (INTEGER columns)
MAX_INT64_ID = 2**63 - 1  # callback event ids (BIGINT columns)
MAX_PRIORITY = 1_000_000  # a channel's priority lies in ±this
MAX_WEIGHT = 1_000_000
MAX_CONCURRENCY = 10_000
MAX_TIMESTAMP = 253_402_300_799.0  # 9999-12-31T23:59:59Z: every Unix time we accept lies in [0, this]


def integer(name: str, value: int, low: int, high: int) -> int:
    """`value` itself if it is an integer in [low, high]; a 400 naming `name` and the range otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequest(f"{name} must be an integer from {low} to {high}")
    return value


def timestamp(name: str, value: float) -> float:
    """A Unix time in [0, MAX_TIMESTAMP] (finite); a 400 otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{name} must be a Unix time from 0 to {int(MAX_TIMESTAMP)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not (math.isfinite(number) and 0 <= number <= MAX_TIMESTAMP):
        raise InvalidRequest(f"{name} must be a Unix time from 0 to {int(MAX_TIMESTAMP)}")
    return number


def window(since: float | None, until: float | None) -> None:
    """A listing's `since` and `until` (either may be left out) are Unix times; a 400 otherwise."""
    if since is not None:
        timestamp("since", since)
    if until is not None:
        timestamp("until", until)
