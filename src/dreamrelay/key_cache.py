"""Per-process cache of API-key lookups, checked against the shared "keys" generation (shared_state.py).

CACHE_SECONDS only bounds staleness if Redis ever loses an announcement; services/auth.py reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dreamrelay.shared_state import Generations, LocalGenerations
from dreamrelay.store import accounts

CACHE_SECONDS = 30.0
CACHE_MAX_ENTRIES = 100_000  # a flood of made-up keys empties the cache rather than growing it
KEYS_GENERATION = "keys"
LAST_USED_RESOLUTION_SECONDS = 60.0


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
