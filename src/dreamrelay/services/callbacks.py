"""Delivering callback events: sign, POST through the URL guard, then log the attempts and schedule
the next ones, several at a time.

The deliverer (worker/deliverer.py) leases a batch of due events and reads their accounts' signing
secrets in one transaction (`lease`), makes each attempt on its own (`attempt`: no database), and
records the attempts that finished meanwhile in one transaction (`record`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import aiohttp

from dreamrelay import logs, metrics
from dreamrelay.domain import signing
from dreamrelay.domain.timings import callback_delay
from dreamrelay.netguard import FetchError, UnsafeURL, URLPolicy, post_json
from dreamrelay.settings import Settings
from dreamrelay.store import accounts as account_store
from dreamrelay.store import outbox
from dreamrelay.store.engine import Database
from dreamrelay.store.outbox import Attempt, Event

log = logging.getLogger(__name__)


class Collaborators(Protocol):
    """What delivering callbacks needs from the process around it."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def url_policy(self) -> URLPolicy: ...

    @property
    def guarded_session(self) -> aiohttp.ClientSession: ...


async def lease(
    rt: Collaborators, *, owner: str, limit: int, lease_seconds: float
) -> tuple[list[Event], dict[int, list[str]]]:
    """Lease up to `limit` due events (at most one per task, its earliest pending) and read the secrets
    their accounts sign with now, in one transaction."""
    now = time.time()
    async with rt.db.direct_transaction(many_rows=True) as tx:
        events = await outbox.lease_due(
            tx,
            owner=owner,
            now=now,
            limit=limit,
            lease_seconds=lease_seconds,
            skip_locked=not rt.db.is_sqlite,
        )
        secrets = {
            account_id: await account_store.callback_secrets(tx, account_id, now)
            for account_id in sorted({e.account_id for e in events})
        }
    return events, secrets


async def attempt(rt: Collaborators, event: Event, secrets_in_use: list[str]) -> Attempt:
    """One attempt at `event` (no database): what happened and what to do next."""
    now = time.time()
    headers = signing.headers(secrets_in_use, event.message_id, int(now), event.payload)
    headers.update(
        {
            "Content-Type": "application/json",
            "User-Agent": "DreamRelay-Webhooks/1",
            "DreamRelay-Task-Id": event.task_id,
            "DreamRelay-Sequence": str(event.sequence),
        }
    )
    status_code: int | None = None
    error: str | None = None
    started = time.monotonic()
    try:
        status_code, _elapsed = await post_json(
            rt.guarded_session,
            event.url,
            event.payload,
            headers,
            rt.url_policy,
            timeout_seconds=rt.settings.callback_timeout_seconds,
        )
    except (UnsafeURL, FetchError) as exc:
        error = str(exc)[:500] or type(exc).__name__
    latency_ms = int((time.monotonic() - started) * 1000)
    ok = status_code is not None and 200 <= status_code < 300
    if ok:
        outcome, next_at = outbox.DELIVERED, None
    elif time.time() - event.created_at >= rt.settings.callback_give_up_seconds:
        outcome, next_at = outbox.DEAD, None
    else:
        delay = callback_delay(event.attempts + 1, rt.settings.callback_retry_base_seconds)
        outcome, next_at = outbox.PENDING, time.time() + delay
    if not ok and error is None:
        error = f"receiver answered {status_code}"
    return Attempt(
        event=event,
        status_code=status_code,
        latency_ms=latency_ms,
        error=None if ok else error,
        outcome=outcome,
        next_attempt_at=next_at,
    )


async def record(rt: Collaborators, attempts: Sequence[Attempt], owner: str) -> None:
    """Log the attempts and move their events on, in one transaction. An event whose lease we lost
    meanwhile is left alone (another deliverer has it now)."""
    async with rt.db.direct_transaction(many_rows=True) as tx:
        recorded = await outbox.record_attempts(tx, attempts, owner=owner, lock=not rt.db.is_sqlite)
    outcomes: Counter[str] = Counter()
    now = time.time()
    for done in attempts:
        event = done.event
        with logs.task_context(event.task_id):
            if event.id not in recorded:
                outcomes["lease_lost"] += 1
                log.info("callback %s: lease lost, attempt not recorded", event.message_id)
                continue
            outcomes[done.outcome] += 1
            if done.outcome == outbox.DELIVERED:
                metrics.CALLBACK_SECONDS.observe(now - event.created_at)
                log.info("callback %s (%s) delivered: %s", event.message_id, event.state, done.status_code)
            else:
                log.info(
                    "callback %s (%s) attempt %d failed: %s; %s",
                    event.message_id,
                    event.state,
                    event.attempts + 1,
                    done.error,
                    "giving up" if done.outcome == outbox.DEAD else "will retry",
                )
    for outcome, count in outcomes.items():
        metrics.CALLBACK_ATTEMPTS.labels(outcome).inc(count)
