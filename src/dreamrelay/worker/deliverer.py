"""The callback deliverer: leases due outbox events in batches, delivers them concurrently, and records
the finished attempts in batches.

Per batch, not per delivery: one transaction leases up to the free slots (once at least
LEASE_AT_LEAST are free, or whenever nothing is in flight), one reads the signing secrets of the
batch's accounts, and one records every attempt that finished meanwhile (the log rows and the next
attempt times). An event stays leased (and its lease kept alive) until its attempt is recorded, so a
crash in between only means it is delivered again: at least once, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from dreamrelay.services import callbacks
from dreamrelay.store import outbox
from dreamrelay.store.schema import outbox as outbox_table
from dreamrelay.worker.leases import LeaseKeeper, finish_in_hand

if TYPE_CHECKING:
    from dreamrelay.runtime import Runtime

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 64
LEASE_AT_LEAST = 16  # while deliveries are in flight, lease again only when this many slots are free
IDLE_WAIT_SECONDS = 0.5


class Deliverer:
    def __init__(self, rt: Runtime, owner: str) -> None:
        self.rt = rt
        self.owner = owner
        self._running: set[asyncio.Task[None]] = set()
        self._finished: list[outbox.Attempt] = []  # attempts made, not yet recorded
        self._recorder: asyncio.Task[None] | None = None
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
            if self._recorder is not None:
                await asyncio.gather(self._recorder, return_exceptions=True)
            await self._record_all()
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
        if free <= 0 or (self._running and free < LEASE_AT_LEAST):
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
        if not events:
            return 0
        self.leases.hold(e.id for e in events)
        try:
            secrets = await callbacks.signing_secrets(self.rt, (e.account_id for e in events))
        except Exception:
            log.exception("reading callback secrets failed; the leased events are retried")
            self.leases.drop(e.id for e in events)
            return 0
        for event in events:
            job = asyncio.create_task(self._deliver(event, secrets[event.account_id]))
            self._running.add(job)
            job.add_done_callback(self._running.discard)
        return len(events)

    async def _deliver(self, event: outbox.Event, secrets: list[str]) -> None:
        try:
            done = await callbacks.attempt(self.rt, event, secrets)
        except Exception:
            log.exception("delivering %s failed; its lease expires and it is retried", event.message_id)
            self.leases.drop([event.id])
        else:
            self._finished.append(done)
            if self._recorder is None or self._recorder.done():
                self._recorder = asyncio.create_task(self._record_all(), name="dreamrelay-deliverer-record")
        finally:
            self.rt.wake_deliverer.set()  # a slot is free: lease the next due events when enough are

    async def _record_all(self) -> None:
        """Record every finished attempt; those finishing during a write go in the next one."""
        while self._finished:
            batch, self._finished = self._finished, []
            try:
                await callbacks.record(self.rt, batch, self.owner)
            except Exception:
                log.exception("recording %d callback attempts failed; their leases expire", len(batch))
            finally:
                self.leases.drop(a.event.id for a in batch)
