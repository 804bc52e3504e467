"""What a worker process has in hand: heartbeats keep those leases alive, shutdown hands them back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import Table

from dreamrelay import metrics
from dreamrelay.store import leases
from dreamrelay.store.outage import described, is_outage

if TYPE_CHECKING:
    from dreamrelay.runtime import Runtime

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Leases on rows of `table` held by `owner`.

    A lease is taken for `lease_seconds`; while the work is in hand (a long media copy, a slow
    receiver) a heartbeat pushes it forward every third of that. When the process dies the
    heartbeats stop and the leases expire, so another worker resumes the work; when it stops
    cleanly `release_all` hands every lease back at once.
    """

    def __init__(self, rt: Runtime, table: Table, owner: str) -> None:
        self.rt = rt
        self.table = table
        self.owner = owner
        self._held: Counter[object] = Counter()

    @property
    def lease_seconds(self) -> float:
        return self.rt.settings.lease_seconds

    def hold(self, ids: Iterable[object]) -> None:
        """Just leased: keep these alive until `drop`."""
        ids = list(ids)
        self._held.update(ids)
        metrics.LEASED.labels(self.table.name).inc(len(ids))

    def drop(self, ids: Iterable[object]) -> None:
        self._held.subtract(ids)
        self._held = +self._held  # forget ids no job holds any more

    @property
    def held(self) -> set[object]:
        return set(self._held)

    async def beat(self) -> int:
        """Extend the leases still held; returns how many were extended."""
        held = self.held
        if not held:
            return 0
        async with self.rt.db.transaction() as conn:
            return await leases.extend(conn, self.table, self.owner, held, time.time() + self.lease_seconds)

    async def run(self) -> None:
        """Beat every third of the lease until cancelled (after the in-hand work is drained)."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await self.beat()
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("lease heartbeat of %s failed; retrying", self.owner)
                else:
                    log.warning("lease heartbeat of %s: database unavailable: %s", self.owner, described(exc))

    async def hand_back(self) -> int:
        """At shutdown: `release_all`, unless the database is unreachable (the leases then expire)."""
        try:
            return await self.release_all()
        except Exception as exc:
            if not is_outage(exc):
                raise
            what = self.table.name
            log.warning(
                "%s could not hand back its %s leases (they expire): %s", self.owner, what, described(exc)
            )
            return 0

    async def release_all(self) -> int:
        async with self.rt.db.transaction() as conn:
            released = await leases.release_all(conn, self.table, self.owner)
        metrics.RELEASED.labels(self.table.name).inc(released)
        if released:
            log.info("%s handed back %d lease(s) of %s", self.owner, released, self.table.name)
        return released


async def finish_in_hand(running: set[asyncio.Task[None]], grace_seconds: float) -> None:
    """Let the jobs in hand finish for up to `grace_seconds`, then cancel what is left."""
    if not running:
        return
    _done, late = await asyncio.wait(set(running), timeout=grace_seconds)
    for job in late:
        job.cancel()
    await asyncio.gather(*late, return_exceptions=True)
