"""Admin request bodies: strict (unknown fields are an error, so an operator's typo never passes)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NewAccount(Strict):
    name: str = Field(examples=["acme"])
    balance: int = Field(default=0, ge=0, description="Opening credits (a top-up ledger row).")


class BalanceChange(Strict):
    amount: int = Field(
        description="Credits to add (top-up) or, on /adjust, a signed change.", examples=[5000]
    )
    note: str = Field(default="", max_length=500)


class KeyLimits(Strict):
    name: str | None = Field(default=None, max_length=100)
    disabled: bool | None = None
    expires_at: float | None = Field(default=None, description="Unix time after which the key stops working.")
    spend_cap: int | None = Field(default=None, ge=0, description="Credits this key may spend in all.")
    allowed_models: list[str] | None = Field(default=None, examples=[["ray-v2", "ray-flash-2"]])
    rpm: int | None = Field(default=None, ge=0, description="Requests per minute; 0 = no limit.")
    max_in_flight: int | None = Field(
        default=None, ge=0, description="Tasks pending or processing at once; 0 = no limit."
    )
    batch_rpm: int | None = Field(default=None, ge=0, description="Batch queries per minute; 0 = no limit.")


class NewKey(KeyLimits):
    account: str


class PriceRule(Strict):
    model: str = Field(examples=["ray-v2"])
    resolution: str = "*"
    duration: str = "*"
    action: str = Field(default="*", description="generate, extend or '*'.")
    credits: int = Field(ge=0, examples=[100])


class PriceKey(Strict):
    model: str
    resolution: str = "*"
    duration: str = "*"
    action: str = "*"


class Replay(Strict):
    ids: list[int] | None = Field(default=None, description="Outbox event ids.")
    task_id: str | None = None
    account: str | None = None
    status: str | None = Field(default=None, description="pending, delivered or dead.")


class NewChannel(Strict):
    name: str = Field(min_length=1, max_length=100, examples=["quickrouter"])
    kind: str = Field(
        description="luma (official API), relay (own-format relay) or sandbox.", examples=["relay"]
    )
    base_url: str = Field(default="", examples=["https://relay.example.com"])
    secret_key: str = Field(default="", description="Never shown again in clear.")
    models: list[str] | None = Field(default=None, description="Own-format models it serves; null = all.")
    priority: int = Field(default=0, description="Higher tiers are tried first.")
    weight: int = Field(default=1, ge=1, description="Share within its tier.")
    concurrency: int = Field(default=16, ge=1, description="Polls in flight at once.")


class ChannelChange(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    base_url: str | None = None
    secret_key: str | None = None
    models: list[str] | None = None
    priority: int | None = None
    weight: int | None = Field(default=None, ge=1)
    concurrency: int | None = Field(default=None, ge=1)
    enabled: bool | None = None


class AccountChange(Strict):
    max_keys: int | None = Field(
        ge=0, le=1000, description="Keys the customer may hold (self-service); null = the server's default."
    )


class NewCodes(Strict):
    amount: int = Field(ge=1, le=10**12, description="Credits each code adds.", examples=[1000])
    count: int = Field(default=1, ge=1, le=1000, description="How many codes to make.", examples=[10])
    expires_at: float | None = Field(default=None, description="Unix time after which the codes are refused.")
    note: str = Field(default="", max_length=500)
