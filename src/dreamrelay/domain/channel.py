"""An upstream channel: where tasks are sent, with its routing settings and its health."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Channel:
    id: int
    name: str
    kind: str  # a key of upstreams/kinds.py::KINDS
    base_url: str
    secret_key: str
    models: tuple[str, ...] | None
    priority: int
    weight: int
    concurrency: int
    enabled: bool
    failures: int = 0
    retry_at: float | None = None
    last_error: str | None = None
    media_networks: str = ""  # CIDRs its media URLs may point into although private

    def available(self, now: float) -> bool:
        """Enabled, and not benched for failing (a benched channel is tried again once retry_at passes)."""
        return self.enabled and (self.retry_at is None or self.retry_at <= now)
