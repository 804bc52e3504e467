"""Bearer-key authentication with a short in-process cache, so the hot path skips the database."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dreamrelay.domain.errors import Forbidden, InvalidApiKey
from dreamrelay.store import accounts

if TYPE_CHECKING:
    from dreamrelay.runtime import Runtime

CACHE_SECONDS = 30.0
LAST_USED_RESOLUTION_SECONDS = 60.0


@dataclass(frozen=True)
class Caller:
    key_id: int
    account_id: int
    allowed_models: tuple[str, ...] | None = None
    rpm: int | None = None
    max_in_flight: int | None = None
    batch_rpm: int | None = None

    def check_model(self, model: str) -> None:
        if self.allowed_models is not None and model not in self.allowed_models:
            raise Forbidden(f"this API key may not use model {model}")


@dataclass
class KeyCache:
    """hash → (owner or None, expiry). Misses are cached too, so floods of bad keys stay cheap."""

    entries: dict[str, tuple[accounts.KeyOwner | None, float]] = field(default_factory=dict)
    last_used: dict[int, float] = field(default_factory=dict)  # key id → when, not yet written
    written: dict[int, float] = field(default_factory=dict)  # key id → last value written

    def forget(self, key_hash: str | None = None) -> None:
        if key_hash is None:
            self.entries.clear()
        else:
            self.entries.pop(key_hash, None)

    def note_use(self, key_id: int, now: float) -> None:
        # last_used_at is kept to the minute: no write per request.
        if now - self.written.get(key_id, 0.0) >= LAST_USED_RESOLUTION_SECONDS:
            self.last_used[key_id] = now

    def take_last_used(self) -> dict[int, float]:
        pending, self.last_used = self.last_used, {}
        self.written.update(pending)
        return pending


def parse_bearer(header: str | None) -> str:
    if not header:
        raise InvalidApiKey("missing Authorization header; send 'Authorization: Bearer <key>'")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidApiKey("malformed Authorization header; expected 'Bearer <key>'")
    return token


async def authenticate(rt: Runtime, header: str | None) -> Caller:
    token = parse_bearer(header)
    key_hash = accounts.hash_key(token)
    now = time.monotonic()
    cached = rt.key_cache.entries.get(key_hash)
    if cached is not None and cached[1] > now:
        owner = cached[0]
    else:
        async with rt.db.reader() as conn:
            owner = await accounts.find_key(conn, key_hash)
        rt.key_cache.entries[key_hash] = (owner, now + CACHE_SECONDS)
    if owner is None:
        raise InvalidApiKey("unknown API key")
    if owner.disabled:
        raise Forbidden("this API key is disabled")
    wall = time.time()
    if owner.expires_at is not None and owner.expires_at <= wall:
        raise Forbidden("this API key has expired")
    rt.key_cache.note_use(owner.key_id, wall)
    return Caller(
        key_id=owner.key_id,
        account_id=owner.account_id,
        allowed_models=owner.allowed_models,
        rpm=owner.rpm,
        max_in_flight=owner.max_in_flight,
        batch_rpm=owner.batch_rpm,
    )
