"""The callback deliverer: leases due outbox events in batches, posts them with a fixed set of
workers, and records the finished attempts in batches.

Per batch, not per delivery:
- one transaction leases events ahead of the workers (up to LEASE_BATCH queued beyond the
  MAX_IN_FLIGHT being posted; again once LEASE_AT_LEAST are wanted, or when nothing is in hand) and
  reads the signing secrets of the batch's accounts;
- MAX_IN_FLIGHT workers take the leased events off a queue and post them on the runtime's kept-alive
  guarded session (netguard checks every URL);
- one transaction records the finished attempts (the log rows and the next attempt times,
  executemany) once RECORD_BATCH are in, when nothing else is in hand, or after RECORD_WAIT.
A slow receiver holds only the worker posting to it: the others go on, and their attempts are
recorded without waiting for it.

An event stays leased (and its lease kept alive) until its attempt is recorded, so a crash in
between only means it is delivered again: at least once. Only the head event of a task is leased
(store/outbox.py::lease_due), so a task's events reach the receiver in order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from dreamrelay.services import callbacks
from dreamrelay.store import outbox
from dreamrelay.store.schema import outbox as outbox_table
from dreamrelay.worker.leases import LeaseKeeper, finish_in_hand

if TYPE_CHECKING:
    from dreamrelay.runtime import Runtime

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 64  # posts at once (the workers)
LEASE_BATCH = 256  # events leased ahead of the workers (so they never wait for a lease)
IN_HAND_MAX = MAX_IN_FLIGHT + LEASE_BATCH
LEASE_AT_LEAST = LEASE_BATCH // 2  # while events are in hand, lease again once this many are wanted
RECORD_BATCH = 64  # attempts recorded at once; fewer when nothing else is in hand or RECORD_WAIT passed
RECORD_WAIT_SECONDS = 0.02
IDLE_WAIT_SECONDS = 0.5

_Job = tuple[outbox.Event, list[str]]


class Deliverer:
    def __init__(self, rt: Runtime, owner: str) -> None:
        self.rt = rt
        self.owner = owner
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._in_hand = 0  # leased events whose attempt has not finished yet (queued or posting)
        self._finished: list[outbox.Attempt] = []  # attempts made, not yet recorded
        self._recorder: asyncio.Task[None] | None = None
        self._record_timer: asyncio.TimerHandle | None = None
        self._drained = False  # the last lease found fewer due events than it asked for
        self.leases = LeaseKeeper(rt, outbox_table, owner)

    async def run(self, stop: asyncio.Event) -> None:
        heartbeat = asyncio.create_task(self.leases.run(), name="dreamrelay-deliverer-heartbeat")
        workers = {asyncio.create_task(self._worker()) for _ in range(MAX_IN_FLIGHT)}
        stop_watch = asyncio.create_task(self._wake_on(stop))
        try:
            while not stop.is_set():
                self.rt.wake_deliverer.clear()  # before looking, so an event from now on wakes us
                if not await self.run_once():
                    await self._idle()
        finally:
            stop_watch.cancel()
            self._forget_queued()
            for _ in workers:
                self._queue.put_nowait(None)
            await finish_in_hand(workers, self.rt.settings.shutdown_grace_seconds)
            if self._record_timer is not None:
                self._record_timer.cancel()
            if self._recorder is not None:
                await asyncio.gather(self._recorder, return_exceptions=True)
            await self._record_all()
            heartbeat.cancel()
            await asyncio.gather(heartbeat, stop_watch, return_exceptions=True)
            await self.leases.release_all()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.rt.wake_deliverer.set()

    async def _idle(self) -> None:
        """Sleep until a task change queues an event, enough slots free up, a retry may be due
        (IDLE_WAIT_SECONDS), or we are stopped."""
        timer = asyncio.get_running_loop().call_later(IDLE_WAIT_SECONDS, self.rt.wake_deliverer.set)
        try:
            await self.rt.wake_deliverer.wait()
        finally:
            timer.cancel()

    async def run_once(self) -> int:
        free = IN_HAND_MAX - self._in_hand
        if self._in_hand and free < LEASE_AT_LEAST:
            return 0
        try:
            events, secrets = await callbacks.lease(
                self.rt, owner=self.owner, limit=free, lease_seconds=self.leases.lease_seconds
            )
        except Exception:
            log.exception("leasing callback events failed; retrying")
            return 0
        self._drained = len(events) < free
        self.leases.hold(e.id for e in events)
        self._in_hand += len(events)
        for event in events:
            self._queue.put_nowait((event, secrets[event.account_id]))
        return len(events)

    async def _worker(self) -> None:
        while (job := await self._queue.get()) is not None:
            event, secrets = job
            try:
                done = await callbacks.attempt(self.rt, event, secrets)
            except Exception:
                log.exception("delivering %s failed; its lease expires and it is retried", event.message_id)
                self.leases.drop([event.id])
            else:
                self._finished.append(done)
            finally:
                self._in_hand -= 1
                if IN_HAND_MAX - self._in_hand >= LEASE_AT_LEAST and not self._drained:
                    self.rt.wake_deliverer.set()  # a batch is wanted: lease the next due events
            self._schedule_record()

    def _schedule_record(self) -> None:
        """Record now when a batch is full or nothing else is in hand, else within RECORD_WAIT."""
        if not self._finished:
            return
        if len(self._finished) >= RECORD_BATCH or self._in_hand == 0:
            self._start_recorder()
        elif self._record_timer is None:
            self._record_timer = asyncio.get_running_loop().call_later(
                RECORD_WAIT_SECONDS, self._start_recorder
            )

    def _start_recorder(self) -> None:
        if self._record_timer is not None:
            self._record_timer.cancel()
            self._record_timer = None
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_all())

    def _forget_queued(self) -> None:
        """Stopping: events leased but not yet posted are handed back (release_all) untouched."""
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None:
                self.leases.drop([job[0].id])
                self._in_hand -= 1

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
            self.rt.wake_deliverer.set()  # the next events of these tasks may be leased now
