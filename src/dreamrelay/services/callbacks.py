"""Delivering one callback event: sign, POST through the URL guard, log the attempt, schedule the next."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from dreamrelay import logs, metrics
from dreamrelay.domain import signing
from dreamrelay.domain.timings import callback_delay
from dreamrelay.netguard import FetchError, UnsafeURL, post_json
from dreamrelay.store import accounts as account_store
from dreamrelay.store import outbox
from dreamrelay.store.outbox import Event

if TYPE_CHECKING:
    from dreamrelay.runtime import Runtime

log = logging.getLogger(__name__)


async def deliver(rt: Runtime, event: Event, owner: str) -> bool:
    """One attempt at `event`; True if the receiver answered 2xx."""
    now = time.time()
    async with rt.db.transaction() as conn:
        secrets_in_use = await account_store.callback_secrets(conn, event.account_id, now)
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
    async with rt.db.transaction() as conn:
        recorded = await outbox.record_attempt(
            conn,
            event,
            owner=owner,
            status_code=status_code,
            latency_ms=latency_ms,
            error=None if ok else error,
            outcome=outcome,
            next_attempt_at=next_at,
        )
    metrics.CALLBACK_ATTEMPTS.labels(outcome if recorded else "lease_lost").inc()
    with logs.task_context(event.task_id):
        if not recorded:
            log.info("callback %s: lease lost, attempt not recorded", event.message_id)
        elif ok:
            metrics.CALLBACK_SECONDS.observe(time.time() - event.created_at)
            log.info("callback %s (%s) delivered: %s", event.message_id, event.state, status_code)
        else:
            log.info(
                "callback %s (%s) attempt %d failed: %s; %s",
                event.message_id,
                event.state,
                event.attempts + 1,
                error,
                "giving up" if outcome == outbox.DEAD else "will retry",
            )
    return ok
