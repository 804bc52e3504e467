"""What an API key may do, as every request carries it."""

from __future__ import annotations

from dataclasses import dataclass

from dreamrelay.domain.errors import Forbidden


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

    def check_model(self, model: str) -> None:
        if self.allowed_models is not None and model not in self.allowed_models:
            raise Forbidden(f"this API key may not use model {model}")
