"""What the operator's and the customer's account services answer: frozen dataclasses, one per shape.

Field order is the JSON key order the HTTP routes answer with (FastAPI turns a dataclass into its
dict, nulls kept), and times are ISO 8601 UTC strings. `/openapi.json` documents these answers as
free-form objects, as it did when they were dicts (http/deps.py JSON_OBJECT).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, is_dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class AccountView:
    id: int
    name: str
    balance: int
    max_keys: int | None
    created_at: str


@dataclass(frozen=True, slots=True)
class OperatorKey:
    """A key as the operator sees it: `disabled` is the operator's switch, the customer's apart."""

    id: int
    prefix: str
    account: str
    name: str
    disabled: bool
    expires_at: str | None
    spend_cap: int | None
    allowed_models: list[str] | None
    rpm: int | None
    max_in_flight: int | None
    batch_rpm: int | None
    batch_envelope: str
    spent: int
    parent_id: int | None
    created_at: str
    last_used_at: str | None
    active: bool
    disabled_by_customer: bool


@dataclass(frozen=True, slots=True)
class NewOperatorKey(OperatorKey):
    key: str  # shown this once


@dataclass(frozen=True, slots=True)
class CustomerKey:
    """A key as its customer sees it (services/account_keys.py)."""

    id: int
    prefix: str
    name: str
    disabled: bool
    expires_at: str | None
    spend_cap: int | None
    spent: int
    allowed_models: list[str] | None
    batch_envelope: str
    disabled_by_operator: bool
    parent_id: int | None
    active: bool
    rpm: int | None
    max_in_flight: int | None
    batch_rpm: int | None
    created_at: str
    last_used_at: str | None
    current: bool  # the key this request came with


@dataclass(frozen=True, slots=True)
class NewCustomerKey(CustomerKey):
    key: str  # shown this once


@dataclass(frozen=True, slots=True)
class AccountDetail:
    id: int
    name: str
    balance: int
    max_keys: int | None
    created_at: str
    keys: list[OperatorKey]
    tasks: dict[str, int]  # tasks by state
    in_flight: int


@dataclass(frozen=True, slots=True)
class BalanceChange:
    account: str
    amount: int
    balance: int


@dataclass(frozen=True, slots=True)
class Mismatch:
    account: str
    balance: int
    ledger_sum: int


@dataclass(frozen=True, slots=True)
class InFlightMismatch:
    key_id: int
    kept: int  # the key's in-flight number (the cap's check reads it)
    counted: int  # its tasks pending or processing


@dataclass(frozen=True, slots=True)
class LedgerCheck:
    accounts_checked: int
    balanced: bool  # every account's ledger sums to its balance
    mismatches: list[Mismatch]
    keys_checked: int
    in_flight_mismatches: list[InFlightMismatch]  # keys whose in-flight number is not their tasks' count


@dataclass(slots=True)
class UsageLine:
    """Per account and model (built up row by row, so not frozen)."""

    account: str
    model: str
    tasks: dict[str, int]
    credits_charged: int = 0
    credits_held: int = 0


@dataclass(frozen=True, slots=True)
class PriceView:
    model: str
    resolution: str
    duration: str
    action: str
    credits: int
    unit: str = "task"  # or 1m_tokens: credits per million tokens used


@dataclass(frozen=True, slots=True)
class PriceRemoved:
    model: str
    resolution: str
    duration: str
    action: str
    removed: bool = True


@dataclass(frozen=True, slots=True)
class Replayed:
    replayed: int


@dataclass(frozen=True, slots=True)
class ChannelView:
    """An upstream channel as the operator sees it (its secret masked)."""

    id: int
    name: str
    kind: str
    base_url: str
    secret_key: str  # masked
    models: list[str] | None
    priority: int
    weight: int
    concurrency: int
    enabled: bool
    failures: int
    benched_until: str | None
    last_error: str | None
    media_networks: str


@dataclass(frozen=True, slots=True)
class CallbackSecret:
    account: str
    secret: str
    previous_secret: str | None


@dataclass(frozen=True, slots=True)
class CodeView:
    """A credit code in the operator's list (never the code itself)."""

    id: int
    prefix: str
    batch: str
    amount: int
    note: str
    created_at: str
    expires_at: str | None
    redeemed_at: str | None
    redeemed_by: str | None
    redeemed_key_id: int | None
    status: str  # unused, used or expired


@dataclass(frozen=True, slots=True)
class MadeCode:
    id: int
    code: str


@dataclass(frozen=True, slots=True)
class CodeBatch:
    """A batch just made: the only answer that holds the codes."""

    batch: str
    amount: int
    count: int
    expires_at: str | None
    note: str
    codes: list[MadeCode]


@dataclass(frozen=True, slots=True)
class Redeemed:
    amount: int
    balance: int
    redeemed_at: str


def plain(value: object) -> Any:
    """A dataclass (or a list of them) as the JSON-ready data the CLI prints; other values as they are."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
