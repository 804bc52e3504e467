"""Bodies of the customer's own account routes (keys, redeem): strict, like the operator's."""

from __future__ import annotations

from pydantic import Field

from dreamrelay.http.schemas.admin import OwnKeyLimits, Strict


class NewOwnKey(OwnKeyLimits):
    """A key of the caller's account, below the calling key; every limit left out is the calling key's
    own (the spending cap: what it has left). `batch_envelope` is the operator's: not given here."""


class OwnKeyChange(OwnKeyLimits):
    """A change to the calling key or a key below it."""


class Redeem(Strict):
    code: str = Field(max_length=100, examples=["DRC-7QX2-…"])
