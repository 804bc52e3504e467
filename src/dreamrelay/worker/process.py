"""Background work of a process: the follower and the callback deliverer, and `dreamrelay worker`."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal

from dreamrelay import __version__, metrics, tracing
from dreamrelay.runtime import Runtime
from dreamrelay.services import orphans
from dreamrelay.services.operations import Watch
from dreamrelay.settings import Settings
from dreamrelay.store import ledger, migrate
from dreamrelay.store.outage import when_reachable
from dreamrelay.worker.deliverer import Deliverer
from dreamrelay.worker.loop import Worker

log = logging.getLogger(__name__)


async def follow_and_deliver(rt: Runtime, stop: asyncio.Event) -> None:
    """Follow tasks and deliver callbacks until `stop`; then finish or hand back what is in hand."""
    # What the process has built by now (modules, the app, the runtime) lives as long as it does:
    # frozen out of the collector, a full collection no longer walks it. Under a callback backlog
    # full collections had taken about a third of the process's CPU.
    gc.freeze()
    worker = Worker(rt)
    watch = Watch(
        rt.db,
        worker.owner,
        beat_seconds=rt.settings.lease_seconds / 3,
        ledger_seconds=rt.settings.ledger_check_seconds,
    )
    await asyncio.gather(
        worker.run(stop), Deliverer(rt, worker.owner).run(stop), watch.run(stop), orphans.run(rt, stop)
    )


async def run_worker_process(settings: Settings) -> None:
    """`dreamrelay worker`: no HTTP; SIGTERM or SIGINT stops taking work and exits cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    tracing.setup("dreamrelay-worker")
    async with Runtime.from_settings(settings) as rt:
        metrics.announce(__version__, rt.db.dialect, ledger.KINDS)
        # One at a time on PostgreSQL (advisory lock); a no-op when current; waits out a database outage.
        await when_reachable("the worker's start", lambda: migrate.upgrade(rt.db))
        log.info("worker %s started (pid %d)", rt.instance, os.getpid())
        await follow_and_deliver(rt, stop)
        log.info("worker %s stopped: work in hand finished or handed back", rt.instance)
