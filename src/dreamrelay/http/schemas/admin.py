"""Admin request bodies: strict (unknown fields are an error, so an operator's typo never passes)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from dreamrelay.domain.catalog import ALLOWED_MODELS_MAX, MODEL_NAME_MAX_CHARS
from dreamrelay.domain.ranges import (
    MAX_CONCURRENCY,
    MAX_CREDITS,
    MAX_INT64_ID,
    MAX_LIMIT,
    MAX_PRICE,
    MAX_PRIORITY,
    MAX_TIMESTAMP,
    MAX_WEIGHT,
)

EventId = Annotated[int, Field(ge=1, le=MAX_INT64_ID)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NewAccount(Strict):
    name: str = Field(examples=["acme"])
    balance: int = Field(
        default=0, ge=0, le=MAX_CREDITS, description="Opening credits (a top-up ledger row), 0 to 10^15."
    )


class BalanceChange(Strict):
    amount: int = Field(
        ge=-MAX_CREDITS,
        le=MAX_CREDITS,
        description="Credits to add (top-up, 1 to 10^15) or, on /adjust, a signed change (±10^15, not 0). "
        "A balance never goes below 0 nor above 10^15.",
        examples=[5000],
    )
    note: str = Field(default="", max_length=500)


class OwnKeyLimits(Strict):
    """A key's settings a customer may give (services/account_keys.py); the operator's add more."""

    name: str | None = Field(default=None, max_length=100)
    disabled: bool | None = None
    expires_at: float | None = Field(
        default=None,
        ge=0,
        le=MAX_TIMESTAMP,
        allow_inf_nan=False,
        description="Unix time after which the key stops working (0 to 253402300799, year 9999).",
    )
    spend_cap: int | None = Field(
        default=None, ge=0, le=MAX_CREDITS, description="Credits this key may spend in all (0 to 10^15)."
    )
    allowed_models: list[Annotated[str, Field(max_length=MODEL_NAME_MAX_CHARS)]] | None = Field(
        default=None,
        max_length=ALLOWED_MODELS_MAX,
        description=f"Models the key may use (at most {ALLOWED_MODELS_MAX}); null = every model.",
        examples=[["ray-v2", "ray-flash-2", "photon-1", "uni-1"]],
    )
    rpm: int | None = Field(
        default=None, ge=0, le=MAX_LIMIT, description="Requests per minute (0 to 10^6); 0 = no limit."
    )
    max_in_flight: int | None = Field(
        default=None, ge=0, le=MAX_LIMIT, description="Tasks pending or processing at once; 0 = no limit."
    )
    batch_rpm: int | None = Field(
        default=None, ge=0, le=MAX_LIMIT, description="Batch queries per minute (0 to 10^6); 0 = no limit."
    )


class KeyLimits(OwnKeyLimits):
    """A key's settings as the operator gives them."""

    batch_envelope: Literal["bare", "newapi"] | None = Field(
        default=None,
        description='POST /luma/tasks answers a bare JSON array ("bare", the default) or new-api\'s '
        '{"code": "success", "message": "", "data": [...]} ("newapi").',
    )


class NewKey(KeyLimits):
    account: str


class PriceRule(Strict):
    model: str = Field(examples=["ray-v2"])
    resolution: str = "*"
    duration: str = "*"
    action: str = Field(default="*", description="generate, extend or '*'.")
    credits: int = Field(ge=0, le=MAX_PRICE, description="Credits per unit, 0 to 10^9.", examples=[100])
    unit: Literal["task", "1m_tokens"] = Field(
        default="task", description="What the credits buy: a task, or a million tokens it uses (Seedance)."
    )


class PriceKey(Strict):
    model: str
    resolution: str = "*"
    duration: str = "*"
    action: str = "*"


class Replay(Strict):
    ids: list[EventId] | None = Field(default=None, max_length=1000, description="Outbox event ids (≤ 1000).")
    task_id: str | None = None
    account: str | None = None
    status: str | None = Field(default=None, description="pending, delivered or dead.")


MEDIA_NETWORKS_DOC = (
    "Comma-separated CIDRs its finished media may be copied from although private or loopback "
    "(an upstream on your own network); empty: public addresses only."
)


class NewChannel(Strict):
    name: str = Field(min_length=1, max_length=100, examples=["quickrouter"])
    kind: str = Field(
        description="luma (official API), relay (own-format relay) or sandbox.", examples=["relay"]
    )
    base_url: str = Field(default="", examples=["https://relay.example.com"])
    secret_key: str = Field(default="", description="Never shown again in clear.")
    models: list[str] | None = Field(default=None, description="Own-format models it serves; null = all.")
    priority: int = Field(
        default=0, ge=-MAX_PRIORITY, le=MAX_PRIORITY, description="Higher tiers are tried first (±10^6)."
    )
    weight: int = Field(default=1, ge=1, le=MAX_WEIGHT, description="Share within its tier (1 to 10^6).")
    concurrency: int = Field(
        default=16, ge=1, le=MAX_CONCURRENCY, description="Polls in flight at once (1 to 10^4)."
    )
    media_networks: str = Field(default="", max_length=1000, description=MEDIA_NETWORKS_DOC)


class ChannelChange(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    base_url: str | None = None
    secret_key: str | None = None
    models: list[str] | None = None
    priority: int | None = Field(default=None, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    weight: int | None = Field(default=None, ge=1, le=MAX_WEIGHT)
    concurrency: int | None = Field(default=None, ge=1, le=MAX_CONCURRENCY)
    enabled: bool | None = None
    media_networks: str | None = Field(default=None, max_length=1000, description=MEDIA_NETWORKS_DOC)


class AccountChange(Strict):
    max_keys: int | None = Field(
        ge=0, le=1000, description="Keys the customer may hold (self-service); null = the server's default."
    )


class NewCodes(Strict):
    amount: int = Field(ge=1, le=10**12, description="Credits each code adds.", examples=[1000])
    count: int = Field(default=1, ge=1, le=1000, description="How many codes to make.", examples=[10])
    expires_at: float | None = Field(
        default=None,
        ge=0,
        le=MAX_TIMESTAMP,
        allow_inf_nan=False,
        description="Unix time after which the codes are refused (up to 253402300799).",
    )
    note: str = Field(default="", max_length=500)
