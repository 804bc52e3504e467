"""A read cancelled mid-statement (a client that hung up on a synchronous wait, a shutdown) gives its
PostgreSQL connection back quietly: no "exception was never retrieved" error from the connection's close
(issue 29.3: one quiet line, nothing half-done), the cancelled caller sees CancelledError, and the pool
goes on serving reads."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from sqlalchemy import text

from dreamrelay.store.engine import Database


async def _cancel_reads_mid_statement(url: str) -> tuple[list[str], list[dict[str, Any]]]:
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    outcomes: list[str] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    db = Database(url, connections=4)
    try:

        async def slow_read() -> None:
            async with db.reader() as conn:
                await conn.execute(text("SELECT pg_sleep(2)"))

        for _ in range(3):
            reading = asyncio.create_task(slow_read())
            await asyncio.sleep(0.3)  # the statement is on the server
            reading.cancel()
            outcome = (await asyncio.gather(reading, return_exceptions=True))[0]
            outcomes.append(type(outcome).__name__)
        await asyncio.sleep(0.2)  # what the cancelled closes left behind has finished
        gc.collect()  # a future nobody retrieved reports itself when it is collected
        await asyncio.sleep(0)
        async with db.reader() as conn:  # the pool still serves
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await db.dispose()
    return outcomes, unhandled


def test_a_cancelled_read_is_cancelled_and_leaves_no_unretrieved_error(pg_url: str) -> None:
    outcomes, unhandled = asyncio.run(_cancel_reads_mid_statement(pg_url))
    # The reader's caller sees its own cancellation, not an error raised by the connection's close.
    assert outcomes == ["CancelledError"] * 3
    assert [str(context.get("exception") or context.get("message")) for context in unhandled] == []
