"""The callback deliverer: leases due outbox events and delivers them concurrently."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from dreamrelay.services.callbacks import deliver
from dreamrelay.store import outbox
from dreamrelay.store.schema import outbox as outbox_table
from dreamrelay.worker.leases import LeaseKeeper, finish_in_hand

if TYPE_CHECKING:
    from dreamrelay.runtime import Runtime

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 64
IDLE_WAIT_SECONDS = 0.5


class Deliverer:
    def __init__(self, rt: Runtime, owner: str) -> None:
        self.rt = rt
        self.owner = owner
        self._running: set[asyncio.Task[None]] = set()
        self.leases = LeaseKeeper(rt, outbox_table, owner)

    async def run(self, stop: asyncio.Event) -> None:
        heartbeat = asyncio.create_task(self.leases.run(), name="dreamrelay-deliverer-heartbeat")
        try:
            while not stop.is_set():
                self.rt.wake_deliverer.clear()  # before looking, so an event from now on wakes us
                if not await self.run_once():
                    await self._idle(stop)
        finally:
            await finish_in_hand(self._running, self.rt.settings.shutdown_grace_seconds)
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            await self.leases.release_all()

    async def _idle(self, stop: asyncio.Event) -> None:
        """Sleep until a task change queues an event, a retry falls due, or we are stopped."""
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self.rt.wake_deliverer.wait())]
        try:
            await asyncio.wait(waiters, timeout=IDLE_WAIT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def run_once(self) -> int:
        free = MAX_IN_FLIGHT - len(self._running)
        if free <= 0:
            return 0
        async with self.rt.db.transaction() as conn:
            events = await outbox.lease_due(
                conn,
                owner=self.owner,
                now=time.time(),
                limit=free,
                lease_seconds=self.leases.lease_seconds,
                skip_locked=not self.rt.db.is_sqlite,
            )
        self.leases.hold(e.id for e in events)
        for event in events:
            job = asyncio.create_task(self._deliver(event))
            self._running.add(job)
            job.add_done_callback(self._running.discard)
        return len(events)

    async def _deliver(self, event: outbox.Event) -> None:
        try:
            await deliver(self.rt, event, self.owner)
        except Exception:
            log.exception("delivering %s failed; its lease expires and it is retried", event.message_id)
        finally:
            self.leases.drop([event.id])
            self.rt.wake_deliverer.set()  # a slot is free: lease the next due events now
