"""Background work of a process: the follower and the callback deliverer, and `dreamrelay worker`."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from dreamrelay.runtime import Runtime
from dreamrelay.settings import Settings
from dreamrelay.store import migrate
from dreamrelay.worker.deliverer import Deliverer
from dreamrelay.worker.loop import Worker

log = logging.getLogger(__name__)


async def follow_and_deliver(rt: Runtime, stop: asyncio.Event) -> None:
    """Follow tasks and deliver callbacks until `stop`; then finish or hand back what is in hand."""
    worker = Worker(rt)
    await asyncio.gather(worker.run(stop), Deliverer(rt, worker.owner).run(stop))


async def run_worker_process(settings: Settings) -> None:
    """`dreamrelay worker`: no HTTP; SIGTERM or SIGINT stops taking work and exits cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Runtime.from_settings(settings) as rt:
        await migrate.upgrade(rt.db)  # one at a time on PostgreSQL (advisory lock); a no-op when current
        log.info("worker %s started (pid %d)", rt.instance, os.getpid())
        await follow_and_deliver(rt, stop)
        log.info("worker %s stopped: work in hand finished or handed back", rt.instance)
