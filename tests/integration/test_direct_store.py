"""store/direct.py on SQLite: a transaction cut short (an error, or a cancelled request while its BEGIN
was still on the way) leaves no transaction open on the writer's connection, which the pool gives back
without a reset; one-statement writes commit on their own; another process's writer is waited for off
the event loop; the store checkpoints the WAL its commits grow."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dreamrelay.store import migrate
from dreamrelay.store.direct import Sql, SqliteStore
from dreamrelay.store.engine import SQLITE_BUSY_TIMEOUT_MS, Database

NAME = Sql.of("UPDATE prices SET credits = credits WHERE model = ?")
COUNT_PRICES = Sql.of("SELECT count(*) FROM prices")
SET_DEFAULT_PRICE = Sql.of("UPDATE prices SET credits = ? WHERE model = '*'")
DEFAULT_PRICE = "SELECT credits FROM prices WHERE model = '*'"


def _another_process_can_write(path: Path) -> None:
    other = sqlite3.connect(path, timeout=0.5, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # "database is locked" if a transaction were left open
        other.execute("ROLLBACK")
    finally:
        other.close()


@contextlib.asynccontextmanager
async def _migrated(path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{path}")
    await migrate.upgrade(db)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "direct.db"


@pytest.fixture
def other_writer(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of "another process" to the same file; the test takes the write lock with it."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        yield other
    finally:
        other.close()


def test_cut_short_transactions_leave_the_writer_free(path: Path) -> None:
    async def run() -> None:
        async with _migrated(path) as db:
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
                assert await tx.run(SET_DEFAULT_PRICE, 7) >= 1
            committed = sqlite3.connect(path)  # seen from another connection at once: committed
            try:
                assert committed.execute(DEFAULT_PRICE).fetchone()[0] == 7
            finally:
                committed.close()

    asyncio.run(run())


def test_a_writer_in_another_process_is_waited_for_off_the_event_loop(
    path: Path, other_writer: sqlite3.Connection
) -> None:
    async def run() -> None:
        async with _migrated(path) as db:
            other_writer.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock
            ticks = 0

            async def ticking() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            async def write() -> None:
                async with db.direct_transaction() as tx:
                    await tx.run(SET_DEFAULT_PRICE, 9)

            ticker = asyncio.create_task(ticking())
            writer = asyncio.create_task(write())
            await asyncio.sleep(0.3)
            assert not writer.done()  # waiting for the lock...
            assert ticks >= 5  # ...while the loop goes on serving others
            await asyncio.to_thread(other_writer.execute, "COMMIT")
            await asyncio.wait_for(writer, 10)
            ticker.cancel()
            assert other_writer.execute(DEFAULT_PRICE).fetchone()[0] == 9
            async with db.direct_transaction() as tx:  # and the next one takes the lock at once
                assert await tx.run(SET_DEFAULT_PRICE, 8) >= 1

    asyncio.run(run())


def test_a_transaction_cancelled_while_waiting_for_another_writer_leaves_nothing_open(
    path: Path, other_writer: sqlite3.Connection
) -> None:
    """Its BEGIN went to aiosqlite's thread to wait for the lock; cancelled there, it still runs once the
    lock is free, and the rollback queued behind it ends it."""

    async def run() -> None:
        async with _migrated(path) as db:
            other_writer.execute("BEGIN IMMEDIATE")

            async def write() -> None:
                async with db.direct_transaction() as tx:
                    await tx.run(NAME, "ray-2")

            writer = asyncio.create_task(write())
            await asyncio.sleep(0.2)  # waiting in aiosqlite's thread for the lock
            writer.cancel()
            await asyncio.sleep(0.1)  # its rollback is queued behind the BEGIN
            await asyncio.to_thread(other_writer.execute, "COMMIT")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(writer, 10)
            async with db.direct_transaction() as tx:  # the writer's connection is free again...
                assert await tx.run(SET_DEFAULT_PRICE, 6) >= 1
            await asyncio.to_thread(_another_process_can_write, path)  # ...and so is the lock

    asyncio.run(run())


def test_the_store_checkpoints_the_wal_its_commits_grow(path: Path) -> None:
    """Commits on the event loop skip SQLite's automatic checkpoint (it would block the loop): the store
    runs one itself, in a thread, every CHECKPOINT_EVERY commits; SQLAlchemy's commits keep SQLite's.
    The commits below write more than SQLite's automatic checkpoint waits for (1,000 pages)."""
    wal = Path(f"{path}-wal")
    insert = Sql.of("INSERT INTO scratch (body) VALUES (?)")

    async def run() -> None:
        async with _migrated(path) as db:
            async with db.transaction() as conn:
                await conn.exec_driver_sql("CREATE TABLE scratch (id INTEGER PRIMARY KEY, body BLOB)")
            await asyncio.to_thread(_checkpoint, path)
            file_before = _size(path)
            for _ in range(SqliteStore.CHECKPOINT_EVERY - 1):
                async with db.direct_transaction() as tx:
                    await tx.run(insert, b"x" * 24000)
            assert _size(path) == file_before  # everything is still in the WAL
            assert _size(wal) > 1_000_000
            async with db.direct_transaction() as tx:  # the CHECKPOINT_EVERY-th commit
                await tx.run(insert, b"x" * 24000)
            for _ in range(200):  # the checkpoint runs in a thread
                if _size(path) > file_before + 1_000_000:
                    break
                await asyncio.sleep(0.05)
            assert _size(path) > file_before + 1_000_000  # copied into the database file
            async with db.transaction() as conn:  # SQLAlchemy's connection kept SQLite's settings
                settings = await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")
                assert settings.scalar() == 1000
                settings = await conn.exec_driver_sql("PRAGMA busy_timeout")
                assert settings.scalar() == SQLITE_BUSY_TIMEOUT_MS

    asyncio.run(run())


def _checkpoint(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _size(path: Path) -> int:
    return path.stat().st_size
