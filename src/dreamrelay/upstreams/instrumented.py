"""Every call to an upstream, counted, timed and traced under its channel's name, in one place."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from dreamrelay import metrics, tracing
from dreamrelay.domain.requests import SubmitRequest
from dreamrelay.upstreams.base import (
    Upstream,
    UpstreamOutcomeUnknown,
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamStatus,
    UpstreamUnavailable,
)

T = TypeVar("T")


def outcome_of(error: BaseException | None) -> str:
    """The bounded outcome label of an upstream call."""
    if error is None:
        return "ok"
    if isinstance(error, UpstreamRateLimited):
        return "rate_limited"
    if isinstance(error, UpstreamUnavailable):
        return "unavailable"
    if isinstance(error, UpstreamRefused):
        return "refused"
    if isinstance(error, UpstreamOutcomeUnknown):
        return "unknown"
    return "error"


class Instrumented:
    """Wraps an adapter (see the `Upstream` protocol); anything else it offers passes straight through."""

    def __init__(self, inner: Upstream, channel: str) -> None:
        self.inner = inner
        self.channel = channel
        self.batch_size = inner.batch_size
        self.takes_callbacks = inner.takes_callbacks

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def submit(self, request: SubmitRequest) -> str:
        return await self._measure("submit", self.inner.submit(request))

    async def poll(self, upstream_ids: Sequence[str]) -> dict[str, UpstreamStatus]:
        return await self._measure("poll", self.inner.poll(upstream_ids), ids=len(upstream_ids))

    async def cancel(self, upstream_id: str) -> None:
        await self._measure("cancel", self.inner.cancel(upstream_id))

    async def _measure(self, operation: str, call: Awaitable[T], **attributes: Any) -> T:
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            with tracing.span(
                f"upstream {operation}", channel=self.channel, operation=operation, **attributes
            ):
                return await call
        except BaseException as exc:
            error = exc
            raise
        finally:
            metrics.UPSTREAM_REQUESTS.labels(self.channel, operation, outcome_of(error)).inc()
            metrics.UPSTREAM_SECONDS.labels(self.channel, operation).observe(time.perf_counter() - started)
