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
A slow receiver holds only the workers posting to it, and at most PER_DESTINATION of them: a
destination (scheme, host and port of the callback URL) with that many posts in flight has its next
events wait in hand (up to PER_DESTINATION_WAITING; beyond that an event's lease is left to expire, so
it comes round again a lease later, undelivered and unrecorded), and the workers go on to other
destinations. One stalled receiver, however many events it has due, leaves the other accounts'
callbacks flowing.

An event stays leased (and its lease kept alive) until its attempt is recorded, so a crash in
between only means it is delivered again: at least once. Only the head event of a task is leased
(store/outbox.py::lease_due), so a task's events reach the receiver in order.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from dreamrelay.services import callbacks
from dreamrelay.store import outbox
from dreamrelay.store.outage import Outage, described, is_outage
from dreamrelay.store.schema import outbox as outbox_table
from dreamrelay.worker.leases import LeaseKeeper, finish_in_hand

if TYPE_CHECKING:
    from dreamrelay.runtime import Runtime

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 64  # posts at once (the workers)
PER_DESTINATION = 8  # posts at once to one destination (scheme, host, port)
PER_DESTINATION_WAITING = 32  # events of a busy destination kept in hand; more go back (lease expiry)
LEASE_BATCH = 256  # events leased ahead of the workers (so they never wait for a lease)
IN_HAND_MAX = MAX_IN_FLIGHT + LEASE_BATCH
LEASE_AT_LEAST = LEASE_BATCH // 2  # while events are in hand, lease again once this many are wanted
RECORD_BATCH = 64  # attempts recorded at once; fewer when nothing else is in hand or RECORD_WAIT passed
RECORD_WAIT_SECONDS = 0.02
IDLE_WAIT_SECONDS = 0.5

_Job = tuple[outbox.Event, list[str]]


def destination(url: str) -> str:
    """Where a callback goes, for the per-destination cap: scheme, host and port (lowercase)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port or ''}"


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
        self._posting: collections.Counter[str] = collections.Counter()  # posts in flight per destination
        self._waiting: dict[str, collections.deque[_Job]] = {}  # leased events of busy destinations
        self._outage = Outage("callback delivery")
        self._record_outage = Outage("recording callback attempts")
        self._stopping = asyncio.Event()  # run's stop

    async def run(self, stop: asyncio.Event) -> None:
        self._stopping = stop
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
            await self.leases.hand_back()

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
        except Exception as exc:
            if not is_outage(exc):
                log.exception("leasing callback events failed; retrying")
                return 0
            await self._outage.wait(exc, self.rt.wake_deliverer)  # cleared before this call; set by stop
            return 0
        self._outage.over()
        self._drained = len(events) < free
        self.leases.hold(e.id for e in events)
        self._in_hand += len(events)
        for event in events:
            self._queue.put_nowait((event, secrets[event.account_id]))
        return len(events)

    async def _worker(self) -> None:
        while (job := await self._queue.get()) is not None:
            where = destination(job[0].url)
            if self._posting[where] >= PER_DESTINATION:
                self._wait_for_destination(where, job)
                continue
            self._posting[where] += 1
            try:
                next_job: _Job | None = job
                while next_job is not None:  # this destination's waiting events, one after the other
                    await self._post(next_job)
                    waiting = self._waiting.get(where)
                    next_job = waiting.popleft() if waiting else None
            finally:
                self._posting[where] -= 1
                if not self._posting[where]:
                    del self._posting[where]
                    self._waiting.pop(where, None)

    def _wait_for_destination(self, where: str, job: _Job) -> None:
        waiting = self._waiting.setdefault(where, collections.deque())
        if len(waiting) < PER_DESTINATION_WAITING:
            waiting.append(job)
            return
        self.leases.drop([job[0].id])  # its lease expires: it comes round again, later
        self._in_hand -= 1

    async def _post(self, job: _Job) -> None:
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
        for waiting in self._waiting.values():
            while waiting:
                self.leases.drop([waiting.popleft()[0].id])
                self._in_hand -= 1

    async def _record_all(self) -> None:
        """Record every finished attempt; those finishing during a write go in the next one.

        While the database is unavailable the attempts stay in hand (their leases kept alive by the
        heartbeat) and are tried again with Outage's pacing, for up to a lease: a post the receiver got
        during a short outage is recorded once it is back, not sent again a lease later. Past that, or
        when the deliverer stops, they are let go: their leases expire and they are sent again."""
        retried: list[outbox.Attempt] = []
        while self._finished or retried:
            batch, self._finished, retried = retried + self._finished, [], []
            try:
                await callbacks.record(self.rt, batch, self.owner)
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("recording %d callback attempts failed; their leases expire", len(batch))
                elif not self._stopping.is_set() and self._record_outage.lasted < self.leases.lease_seconds:
                    retried = batch
                    await self._record_outage.wait(exc, self._stopping)
                    continue
                else:
                    log.warning(
                        "recording %d callback attempts failed, database unavailable (their leases expire, "
                        "they are sent again): %s",
                        len(batch),
                        described(exc),
                    )
            else:
                self._record_outage.over()
            self.leases.drop(a.event.id for a in batch)
            self.rt.wake_deliverer.set()  # the next events of these tasks may be leased now
