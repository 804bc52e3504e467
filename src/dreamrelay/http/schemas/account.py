"""Bodies of the customer's own account routes (keys, redeem): strict, like the operator's."""

from __future__ import annotations

from pydantic import Field

from dreamrelay.http.schemas.admin import KeyLimits, Strict


class NewOwnKey(KeyLimits):
    """A key of the caller's account; every limit left out is the calling key's own."""


class Redeem(Strict):
    code: str = Field(max_length=100, examples=["DRC-7QX2-…"])
