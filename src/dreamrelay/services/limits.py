"""The per-key request limits of one API request, asked in one rate-limit check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from dreamrelay.domain.errors import RateLimited
from dreamrelay.ratelimit import NO_LIMIT, effective_limit
from dreamrelay.services.auth import Caller

if TYPE_CHECKING:
    from dreamrelay.ratelimit import RateLimiter
    from dreamrelay.settings import Settings


class Collaborators(Protocol):
    settings: Settings  # the server's limits, for keys without their own
    limiter: RateLimiter


async def admit(rt: Collaborators, caller: Caller, *, batch: bool = False) -> dict[str, str] | None:
    """Take this request from the key's requests-per-minute bucket and, for a batch query, also from
    its batch bucket, in one check (a token leaves each bucket only if every one has one).

    Returns the X-RateLimit-* headers to show (of the bucket closest to running out), or None when
    no limit applies; raises RateLimited (with Retry-After) when a bucket is empty.
    """
    settings = rt.settings
    buckets: list[tuple[str, int]] = []
    rpm = effective_limit(caller.rpm, settings.rate_limit_rpm)
    if rpm != NO_LIMIT:
        buckets.append((f"rpm:{caller.key_id}", rpm))
    if batch:
        per_batch = effective_limit(caller.batch_rpm, settings.rate_limit_batch_rpm)
        if per_batch != NO_LIMIT:
            buckets.append((f"batch:{caller.key_id}", per_batch))
    if not buckets:
        return None
    decision = await rt.limiter.hit_all(buckets)
    headers = decision.headers()
    if not decision.allowed:
        raise RateLimited("rate limit reached for this API key; slow down", headers=headers)
    return headers
