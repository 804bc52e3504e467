"""Bearer-key authentication with a short in-process cache, so the hot path skips the database.

The cache is kept per process and checked against the shared "keys" generation on every request
(shared_state.py): a key disabled, limited or expired through any process is refused by every
process from the very next request. CACHE_SECONDS only bounds staleness if Redis ever loses an
announcement.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

from dreamrelay.domain.errors import Forbidden, InvalidApiKey
from dreamrelay.domain.keys import Caller as Caller  # where the services and routes import it from
from dreamrelay.key_cache import CACHE_MAX_ENTRIES, CACHE_SECONDS, KEYS_GENERATION
from dreamrelay.ratelimit import Decision
from dreamrelay.store import accounts

if TYPE_CHECKING:
    from dreamrelay.key_cache import KeyCache
    from dreamrelay.ratelimit import RateLimiter
    from dreamrelay.store.engine import Database


class Collaborators(Protocol):
    db: Database
    key_cache: KeyCache
    limiter: RateLimiter  # sign-in attempts


def parse_bearer(header: str | None) -> str:
    if not header:
        raise InvalidApiKey("missing Authorization header; send 'Authorization: Bearer <key>'")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidApiKey("malformed Authorization header; expected 'Bearer <key>'")
    return token


async def _find_owner(rt: Collaborators, key_hash: str) -> accounts.KeyOwner | None:
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


# Per process: a key's SHA-256 by the key itself (a pure function, so nothing to invalidate).
_HASHES_MAX = 10_000  # a flood of made-up keys empties it rather than growing it
_hashes: dict[str, str] = {}


def _hash(token: str) -> str:
    known = _hashes.get(token)
    if known is None:
        if len(_hashes) >= _HASHES_MAX:
            _hashes.clear()
        known = _hashes[token] = accounts.hash_key(token)
    return known


async def authenticate(rt: Collaborators, header: str | None) -> Caller:
    token = parse_bearer(header)
    owner = await _find_owner(rt, _hash(token))
    if owner is None:
        raise InvalidApiKey("unknown API key")
    if owner.disabled:
        raise Forbidden("this API key is disabled")
    wall = time.time()
    if owner.expires_at is not None and owner.expires_at <= wall:
        raise Forbidden("this API key has expired")
    rt.key_cache.note_use(owner.caller.key_id, wall)
    return owner.caller


SIGN_IN_ATTEMPTS_PER_MINUTE = 20  # per client address, console sign-in and wrong /admin tokens together


async def sign_in_attempt(rt: Collaborators, client: str, *, counts: bool = True) -> Decision:
    """One sign-in from `client` (console form, or a wrong admin token): refused once the address has
    used its attempts for the minute. `counts=False` only asks, for a right admin token: once the
    bucket is empty every answer is the same 429, so a guess cannot be told apart by its status."""
    return await rt.limiter.hit(f"signin:{client}", SIGN_IN_ATTEMPTS_PER_MINUTE, cost=int(counts))
