"""store/direct.py on SQLite: a transaction cut short (an error, or a cancelled request while its BEGIN
was still on the way) leaves no transaction open on the writer's connection, which the pool gives back
without a reset; one-statement writes commit on their own."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from dreamrelay.store import migrate
from dreamrelay.store.direct import Sql
from dreamrelay.store.engine import Database

NAME = Sql.of("UPDATE prices SET credits = credits WHERE model = ?")
COUNT_PRICES = Sql.of("SELECT count(*) FROM prices")


def _another_process_can_write(path: Path) -> None:
    other = sqlite3.connect(path, timeout=0.5, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # "database is locked" if a transaction were left open
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_cut_short_transactions_leave_the_writer_free(tmp_path: Path) -> None:
    path = tmp_path / "direct.db"

    async def run() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await migrate.upgrade(db)
        try:
            for turns in range(6):  # cancelled at each point of the way: before, during, after BEGIN

                async def held() -> None:
                    async with db.direct_transaction() as tx:
                        await tx.run(NAME, "ray-2")
                        await asyncio.sleep(30)

                task = asyncio.create_task(held())
                for _ in range(turns):
                    await asyncio.sleep(0)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await asyncio.to_thread(_another_process_can_write, path)
                async with db.direct_transaction() as tx:  # and this process's next writers too
                    assert (await tx.rows(COUNT_PRICES))[0][0] > 0
                async with db.transaction() as conn:
                    await conn.exec_driver_sql("UPDATE prices SET credits = credits")

            with pytest.raises(RuntimeError):
                async with db.direct_transaction() as tx:
                    await tx.run(NAME, "ray-2")
                    raise RuntimeError("the request failed half way")
            await asyncio.to_thread(_another_process_can_write, path)

            async with db.direct_autocommit() as tx:
                assert await tx.run(Sql.of("UPDATE prices SET credits = 7 WHERE model = ?"), "*") >= 1
            committed = sqlite3.connect(path)  # seen from another connection at once: committed
            try:
                assert committed.execute("SELECT credits FROM prices WHERE model = '*'").fetchone()[0] == 7
            finally:
                committed.close()
        finally:
            await db.dispose()

    asyncio.run(run())
