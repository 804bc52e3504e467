"""Bearer-key authentication with a short in-process cache, so the hot path skips the database.

The cache is kept per process and checked against the shared "keys" generation on every request
(shared_state.py): a key disabled, limited or expired through any process is refused by every
process from the very next request. CACHE_SECONDS only bounds staleness if Redis ever loses an
announcement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dreamrelay.domain.errors import Forbidden, InvalidApiKey
from dreamrelay.ratelimit import Decision
from dreamrelay.shared_state import Generations, LocalGenerations
from dreamrelay.store import accounts

if TYPE_CHECKING:
    from dreamrelay.runtime import Runtime

CACHE_SECONDS = 30.0
CACHE_MAX_ENTRIES = 100_000  # a flood of made-up keys empties the cache rather than growing it
KEYS_GENERATION = "keys"
LAST_USED_RESOLUTION_SECONDS = 60.0


@dataclass(frozen=True)
class Caller:
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


@dataclass
class KeyCache:
    """hash → (owner or None, expiry). Misses are cached too, so floods of bad keys stay cheap.

    `entries` were all read under one shared generation; when it moves on they are dropped.
    """

    generations: Generations = field(default_factory=LocalGenerations)
    entries: dict[str, tuple[accounts.KeyOwner | None, float]] = field(default_factory=dict)
    generation: int | None = None  # the shared generation `entries` were read under
    last_used: dict[int, float] = field(default_factory=dict)  # key id → when, not yet written
    written: dict[int, float] = field(default_factory=dict)  # key id → last value written

    async def invalidate(self) -> None:
        """After any change to a key: every process (this one too) reads keys afresh."""
        await self.generations.bump(KEYS_GENERATION)

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


async def _find_owner(rt: Runtime, key_hash: str) -> accounts.KeyOwner | None:
    cache = rt.key_cache
    # Read the generation before the database: a row read after it is at least that fresh.
    generation = await cache.generations.read(KEYS_GENERATION)
    if generation is None or generation != cache.generation:
        cache.entries.clear()
        cache.generation = generation
    now = time.monotonic()
    cached = cache.entries.get(key_hash)
    if cached is not None and cached[1] > now:
        return cached[0]
    async with rt.db.reader() as conn:
        owner = await accounts.find_key(conn, key_hash)
    # Kept only if no newer generation was seen meanwhile (by a request running beside this one).
    if generation is not None and generation == cache.generation:
        if len(cache.entries) >= CACHE_MAX_ENTRIES:
            cache.entries.clear()
        cache.entries[key_hash] = (owner, now + CACHE_SECONDS)
    return owner


async def authenticate(rt: Runtime, header: str | None) -> Caller:
    token = parse_bearer(header)
    owner = await _find_owner(rt, accounts.hash_key(token))
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
        batch_envelope=owner.batch_envelope,
    )


SIGN_IN_ATTEMPTS_PER_MINUTE = 20  # per client address, console sign-in and wrong /admin tokens together


async def sign_in_attempt(rt: Runtime, client: str, *, counts: bool = True) -> Decision:
    """One sign-in from `client` (console form, or a wrong admin token): refused once the address has
    used its attempts for the minute. `counts=False` only asks, for a right admin token: once the
    bucket is empty every answer is the same 429, so a guess cannot be told apart by its status."""
    return await rt.limiter.hit(f"signin:{client}", SIGN_IN_ATTEMPTS_PER_MINUTE, cost=int(counts))
