"""The follower: leases due tasks, polls their upstreams per channel, applies what it learns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay import logs, metrics
from dreamrelay.domain.channel import Channel
from dreamrelay.domain.task import Task
from dreamrelay.domain.timings import CALLBACK_SAFETY_POLL_SECONDS, overdue_reason
from dreamrelay.services import follow
from dreamrelay.services.dispatch import note_channel_failure
from dreamrelay.store import accounts as account_store
from dreamrelay.store import channels as channel_store
from dreamrelay.store import tasks as task_store
from dreamrelay.store.outage import Outage, described, is_outage
from dreamrelay.store.schema import tasks as tasks_table
from dreamrelay.upstreams.base import Upstream, UpstreamRateLimited, UpstreamStatus, UpstreamUnavailable
from dreamrelay.worker.leases import LeaseKeeper, finish_in_hand

if TYPE_CHECKING:
    from dreamrelay.runtime import Runtime

log = logging.getLogger(__name__)

IDLE_WAIT_SECONDS = 1.0
MAX_IN_FLIGHT = 256
LAST_USED_FLUSH_SECONDS = 30.0


class Worker:
    def __init__(self, rt: Runtime, name: str | None = None) -> None:
        self.rt = rt
        self.owner = name or f"{socket.gethostname()}:{os.getpid()}:{rt.instance}"
        self.leases = LeaseKeeper(rt, tasks_table, self.owner)
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._channel_slots: dict[int, asyncio.Semaphore] = {}
        # Batched channels with polls in flight: their tasks that fall due meanwhile wait for the next
        # sweep and go out together, instead of trickling out in many small requests.
        self._sweeping: dict[int, int] = defaultdict(int)
        self._running: set[asyncio.Task[None]] = set()
        self._last_flush = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, then finish what is in hand (within the grace) and release the rest."""
        heartbeat = asyncio.create_task(self.leases.run(), name="dreamrelay-follower-heartbeat")
        outage = Outage("the follower")
        try:
            while not stop.is_set():
                try:
                    leased = await self.run_once()
                    if not leased:
                        await self._idle(stop)
                    await self._flush_last_used()
                except Exception as exc:
                    if not is_outage(exc):
                        raise
                    await outage.wait(exc, stop)  # the database restarts or is gone: wait, try again
                else:
                    outage.over()
        finally:
            await finish_in_hand(self._running, self.rt.settings.shutdown_grace_seconds)
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            await self.leases.hand_back()
            with contextlib.suppress(Exception):  # at most 30 s of last-used times lost
                await self._flush_last_used(force=True)

    async def run_once(self) -> int:
        """Lease what is due (as far as free slots allow) and start following it. Returns the count."""
        free = MAX_IN_FLIGHT - len(self._running)
        if free <= 0:
            return 0
        now = time.time()
        async with self.rt.db.transaction() as conn:
            leased = await self._lease(
                conn,
                now,
                limit=min(free, self.rt.settings.worker_batch_size),
                skip_channels=[cid for cid, polls in self._sweeping.items() if polls],
            )
            channel_list = await channel_store.list_channels(conn) if leased else []
        if not leased:
            return 0
        self.leases.hold(t.id for t in leased)
        by_id = {c.id: c for c in channel_list}
        # One channel may hold video and image tasks: each kind is polled through its own adapter.
        groups: dict[tuple[int | None, str], list[Task]] = defaultdict(list)
        for task in leased:
            reason = overdue_reason(task, now)
            if reason is not None:
                self._spawn(follow.fail(self.rt, task, self.owner, reason), [task.id])
            else:
                groups[(task.channel_id, task.capability)].append(task)
        await self._fill_batches(groups, by_id, now, free - len(leased))
        for (channel_id, capability), group in groups.items():
            channel = by_id.get(channel_id) if channel_id is not None else None
            if channel is None:
                for task in group:
                    removed = follow.fail(self.rt, task, self.owner, "its upstream channel was removed")
                    self._spawn(removed, [task.id])
                continue
            try:
                upstream = self.rt.upstream_for(channel, capability=capability)
            except ValueError:  # the operator changed the channel's kind under these tasks
                for task in group:
                    changed = follow.fail(self.rt, task, self.owner, "its upstream channel changed kind")
                    self._spawn(changed, [task.id])
                continue
            self._follow_channel(channel, group, upstream)
        return len(leased)

    async def _lease(
        self, conn: AsyncConnection, now: float, *, limit: int, horizon: float = 0.0, **only: Any
    ) -> list[Task]:
        settings = self.rt.settings
        return await task_store.lease_due(
            conn,
            owner=self.owner,
            now=now,
            limit=limit,
            lease_seconds=settings.lease_seconds,
            skip_locked=not self.rt.db.is_sqlite,
            horizon=horizon,
            **only,
        )

    async def _fill_batches(
        self,
        groups: dict[tuple[int | None, str], list[Task]],
        channels: dict[int, Channel],
        now: float,
        free: int,
    ) -> None:
        """Where a batched poll has room left, let tasks of that channel due soon ride along.

        The request goes out anyway; riders cost nothing now and are not due on their own later, so a
        channel's tasks fall into step and share requests.
        """
        for (channel_id, capability), group in list(groups.items()):
            channel = channels.get(channel_id) if channel_id is not None else None
            if channel is None or free <= 0:
                continue
            try:
                size = self.rt.upstream_for(channel, capability=capability).batch_size
            except ValueError:
                continue
            room = min(-len(group) % size if size > 1 else 0, free)
            if room <= 0:
                continue
            async with self.rt.db.transaction() as conn:
                riders = await self._lease(
                    conn,
                    now,
                    limit=room,
                    horizon=self.rt.settings.batch_ride_along_seconds,
                    channel_id=channel.id,
                )
            self.leases.hold(r.id for r in riders)
            for rider in riders:  # a batched channel holds one kind of task; sorted by kind all the same
                groups[(channel_id, rider.capability)].append(rider)
            free -= len(riders)

    async def drain(self) -> None:
        """Wait for every follow started so far (tests and graceful shutdown)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    def _follow_channel(self, channel: Channel, group: list[Task], upstream: Upstream) -> None:
        size = max(upstream.batch_size, 1)
        for start in range(0, len(group), size):
            batch = group[start : start + size]
            work = self._poll if size == 1 else self._sweep
            self._spawn(work(channel, upstream, batch), [t.id for t in batch])

    async def _sweep(self, channel: Channel, upstream: Upstream, batch: list[Task]) -> None:
        self._sweeping[channel.id] += 1
        try:
            await self._poll(channel, upstream, batch)
        finally:
            self._sweeping[channel.id] -= 1
            if not self._sweeping[channel.id]:
                self.rt.wake_worker.set()  # what fell due meanwhile goes out now, in one sweep

    async def _poll(self, channel: Channel, upstream: Upstream, batch: list[Task]) -> None:
        logs.channel.set(channel.name)  # this job's own context: every line it logs names the channel
        statuses = await self._ask(channel, upstream, batch)
        if statuses is not None:
            await self._apply(upstream, batch, statuses)

    async def _ask(
        self, channel: Channel, upstream: Upstream, batch: list[Task]
    ) -> dict[str, UpstreamStatus] | None:
        """One poll request within the channel's budget; None when it failed (the tasks are rescheduled)."""
        slots = self._channel_slots.setdefault(channel.id, asyncio.Semaphore(max(channel.concurrency, 1)))
        async with slots:
            try:
                statuses = await upstream.poll([t.upstream_id for t in batch if t.upstream_id])
            except UpstreamRateLimited as exc:
                # "Later", not a failure: the tasks keep their error count.
                metrics.UPSTREAM_POLLS.labels("rate_limited").inc()
                log.info("channel %s asks us to slow down: %s", channel.name, exc)
                for task in batch:
                    await follow.postpone(self.rt, task, self.owner, exc.retry_after)
                return None
            except UpstreamUnavailable as exc:
                metrics.UPSTREAM_POLLS.labels("unavailable").inc()
                log.warning("polling channel %s failed: %s", channel.name, exc)
                await note_channel_failure(self.rt, channel, str(exc))
                for task in batch:
                    await follow.reschedule(self.rt, task, self.owner, errors=task.poll_errors + 1)
                return None
        metrics.UPSTREAM_POLLS.labels("ok").inc()
        if channel.failures:
            async with self.rt.db.transaction() as conn:
                await channel_store.record_success(conn, channel.id)
        return statuses

    async def _apply(
        self, upstream: Upstream, batch: list[Task], statuses: dict[str, UpstreamStatus]
    ) -> None:
        """Write what upstream said; finished tasks copy their media in jobs of their own."""
        poll_floor = CALLBACK_SAFETY_POLL_SECONDS if self.rt.calls_back(upstream) else 0.0
        for task in batch:
            status = statuses.get(task.upstream_id or "")
            if status is None:
                await follow.reschedule(self.rt, task, self.owner, errors=task.poll_errors + 1)
            elif status.state.is_terminal:
                self.leases.hold([task.id])  # the media copy holds the lease on after this poll ends
                self._spawn(follow.apply_status(self.rt, task, status, self.owner), [task.id])
            else:
                await follow.apply_status(self.rt, task, status, self.owner, poll_floor=poll_floor)

    def _spawn(self, work: object, task_ids: list[str]) -> None:
        async def guarded() -> None:
            async with self._slots:
                try:
                    await work  # type: ignore[misc]
                except Exception as exc:
                    if not is_outage(exc):
                        log.exception("following a task failed; its lease will expire and it is retried")
                    else:
                        log.warning("database unavailable while following %s: %s", task_ids, described(exc))
                finally:
                    self.leases.drop(task_ids)  # no more heartbeats: written, or left to expire

        job = asyncio.create_task(guarded())
        self._running.add(job)
        job.add_done_callback(self._running.discard)

    async def _idle(self, stop: asyncio.Event) -> None:
        self.rt.wake_worker.clear()  # before looking, so a submit from now on wakes us
        async with self.rt.db.reader() as conn:
            due = await task_store.next_due_at(conn)
        wait = IDLE_WAIT_SECONDS if due is None else min(max(due - time.time(), 0.05), IDLE_WAIT_SECONDS)
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self.rt.wake_worker.wait())]
        try:
            await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _flush_last_used(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_flush < LAST_USED_FLUSH_SECONDS:
            return
        self._last_flush = time.monotonic()
        pending = self.rt.key_cache.take_last_used()
        if pending:
            async with self.rt.db.transaction() as conn:
                await account_store.touch_keys(conn, pending)
