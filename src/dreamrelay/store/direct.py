"""Hot-path statements on the database driver itself, without SQLAlchemy's per-statement work.

Through SQLAlchemy a statement costs ≈ 200 µs of CPU on either store (cache key, compile-cache lookup,
result objects, and on SQLite four thread hops through aiosqlite: cursor, execute, fetch, close); on the
driver it costs ≈ 25 µs (one aiosqlite hop, or one asyncpg round trip). Hops between threads are what
costs most on a virtual machine (each wakes a sleeping thread): an empty SQLAlchemy transaction on SQLite
took ≈ 1 ms of the event loop's CPU on the 2026-11-30 machine. The statements every submit runs (price,
hold, in-flight count, task row, idempotency record, the dispatch update) and the callback deliverer's
(lease a batch, record a batch, signing secrets) go this way; the connections still come from the same
pools, so SQLite's one writer at a time still holds.

SQL is written once with `?` placeholders (`Sql`), turned into `$1, $2, …` for PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import aiosqlite
import asyncpg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

Row = Sequence[Any]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sql:
    """One statement in both stores' placeholder styles."""

    sqlite: str
    postgresql: str

    @classmethod
    def of(cls, text: str) -> Sql:
        parts = text.split("?")
        numbered = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))
        return cls(sqlite=text, postgresql=numbered)


class Reads(Protocol):
    """Queries on one connection (`reading`), or inside a transaction (every `Tx` reads too)."""

    async def rows(self, sql: Sql, *params: Any) -> list[Row]:
        """The rows a query (or a statement with RETURNING) gives."""
        ...


class Tx(Reads, Protocol):
    """Statements inside one transaction."""

    async def run(self, sql: Sql, *params: Any) -> int:
        """Run a write; how many rows it changed."""
        ...

    async def run_many(self, sql: Sql, rows: Sequence[Sequence[Any]]) -> None:
        """Run one write once per row of parameters (the driver's executemany)."""
        ...

    def after_commit(self, effect: Callable[[], None]) -> None:
        """Run `effect` once the transaction commits (never if it rolls back)."""
        ...


class _Effects:
    def __init__(self) -> None:
        self.effects: list[Callable[[], None]] = []

    def after_commit(self, effect: Callable[[], None]) -> None:
        self.effects.append(effect)

    def run_effects(self) -> None:
        for effect in self.effects:
            effect()


class _SqliteReads:
    def __init__(self, conn: Any) -> None:
        self._conn = conn  # aiosqlite.Connection: every query is one hop to its thread

    async def rows(self, sql: Sql, *params: Any) -> list[Row]:
        return list(await self._conn.execute_fetchall(sql.sqlite, params))


class _SqliteInline(_Effects):
    """Statements on the sqlite3 connection itself, on the event loop, inside BEGIN IMMEDIATE: this
    connection then holds the write lock and WAL readers never block it, so no statement waits, and each
    costs ≈ 5 µs instead of a ≈ 25 µs hop to aiosqlite's thread and back."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__()
        self._conn = conn

    async def rows(self, sql: Sql, *params: Any) -> list[Row]:
        try:
            return self._conn.execute(sql.sqlite, params).fetchall()
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(sql.sqlite, params, exc) from exc

    async def run(self, sql: Sql, *params: Any) -> int:
        try:
            return self._conn.execute(sql.sqlite, params).rowcount
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(sql.sqlite, params, exc) from exc

    async def run_many(self, sql: Sql, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._conn.executemany(sql.sqlite, rows)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(sql.sqlite, rows, exc) from exc


class _Postgres(_Effects):
    def __init__(self, conn: Any, again: Callable[[], Awaitable[Any]] | None = None) -> None:
        super().__init__()
        self._conn = conn  # asyncpg.Connection
        # A fresh connection, for a first statement that found this one dead: reads, and rerun-safe writes.
        self._again = again

    async def rows(self, sql: Sql, *params: Any) -> list[Row]:
        again, self._again = self._again, None
        try:
            return list(await self._conn.fetch(sql.postgresql, *params))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(sql.postgresql, params, exc) from exc
        except DEAD_CONNECTION:
            if again is None:
                raise
        self._conn = await again()  # the first read found a dead connection: nothing ran, read again
        return list(await self._conn.fetch(sql.postgresql, *params))

    async def run(self, sql: Sql, *params: Any) -> int:
        again, self._again = self._again, None
        try:
            status = await self._conn.execute(sql.postgresql, *params)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(sql.postgresql, params, exc) from exc
        except DEAD_CONNECTION:
            if again is None:
                raise
            # A statement whose second run changes nothing once the first ran (a compare-and-set):
            # sent again on a fresh connection.
            self._conn = await again()
            status = await self._conn.execute(sql.postgresql, *params)
        return int(status.rsplit(" ", 1)[-1])  # "UPDATE 1", "INSERT 0 1"

    async def run_many(self, sql: Sql, rows: Sequence[Sequence[Any]]) -> None:
        try:
            await self._conn.executemany(sql.postgresql, rows)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(sql.postgresql, rows, exc) from exc


class SqliteStore:
    """Writes on the SQLAlchemy writer pool's one connection, taken raw (so writers of this process still
    queue for SQLite's one write lock in the pool, as every other write does), every statement of them on
    the event loop; reads on one connection of their own, shared: each read is a single statement, and WAL
    readers never wait for the writer.

    On the loop, a statement costs its SQLite work and nothing else; a hop to aiosqlite's thread costs
    ≈ 100 µs of the loop's CPU on a virtual machine (waking a sleeping thread). Two things could still
    block the loop, and neither does:
    - waiting for the write lock another process holds: BEGIN IMMEDIATE is tried with no busy wait, and
      only when the lock is taken does it wait (up to the busy timeout) in aiosqlite's thread;
    - a WAL checkpoint after a commit: our commits skip SQLite's automatic one, and every
      CHECKPOINT_EVERY commits a passive checkpoint runs in the reading connection's thread instead.
    """

    CHECKPOINT_EVERY = 200  # commits (a few pages each): the WAL stays within a few MB

    def __init__(self, writer: AsyncEngine, path: str, *, begin: str, busy_timeout_ms: int) -> None:
        self._writer = writer
        self._path = path
        self._begin = begin
        self._busy_timeout_ms = busy_timeout_ms
        self._reads: Any = None  # aiosqlite.Connection, opened on first use
        self._commits = 0  # since the last checkpoint
        self._checkpoint: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def transaction(self, *, many_rows: bool = False) -> AsyncIterator[Tx]:
        """Committed on exit, rolled back on an error; after-commit effects run once it committed.

        `many_rows`: the transaction writes enough (a batch of callback attempts: tens of rows of a few
        kB) that its COMMIT is better in aiosqlite's thread, where writing the WAL overlaps the loop's
        work, than on the loop; there it also takes SQLite's automatic checkpoint when one is due."""
        fairy = await self._writer.raw_connection()
        try:
            driver: Any = fairy.driver_connection
            conn: sqlite3.Connection = driver._conn  # aiosqlite keeps the sqlite3 connection there
            tx = _SqliteInline(conn)
            on_loop = False  # nothing of this transaction is queued in aiosqlite's thread
            try:
                on_loop = _begin_at_once(conn, self._begin, self._busy_timeout_ms)
                if not on_loop:
                    # Another process writes: wait for the lock in aiosqlite's thread. If this is
                    # cancelled on its way, aiosqlite still runs the BEGIN, then the rollback below.
                    await driver.execute(self._begin)
                yield tx
                if many_rows:
                    on_loop = False  # a rollback from here on queues behind the COMMIT, in its thread
                    await driver.commit()
                else:
                    conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpoint runs off the loop (_wrote)
                    try:
                        conn.commit()
                    finally:
                        conn.execute(f"PRAGMA wal_autocheckpoint={_SQLITE_AUTOCHECKPOINT_PAGES}")
            except BaseException:
                # The writer pool does not reset connections on return (engine.py), so no transaction
                # may be left open here; after a BEGIN or COMMIT sent to aiosqlite's thread, the
                # rollback is queued behind it there.
                if on_loop:
                    conn.rollback()
                else:
                    await driver.rollback()
                raise
        finally:
            await greenlet_spawn(fairy.close)
        self._wrote()
        tx.run_effects()

    def _wrote(self) -> None:
        self._commits += 1
        if self._commits >= self.CHECKPOINT_EVERY and (self._checkpoint is None or self._checkpoint.done()):
            self._commits = 0
            self._checkpoint = asyncio.create_task(self._checkpoint_wal())

    async def _checkpoint_wal(self) -> None:
        """Copy what the WAL holds into the database file, as far as readers allow (never waits)."""
        try:
            reads = await self._reading_connection()
            await reads.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # the next one tries again; SQLAlchemy's commits also checkpoint
            log.warning("a WAL checkpoint failed", exc_info=True)

    def autocommit(self, *, rerun_safe: bool = False) -> AbstractAsyncContextManager[Tx]:
        """Writes that each commit on their own: on SQLite, a transaction (no hop either way; a file
        has no connection to find dead, so `rerun_safe` changes nothing)."""
        return self.transaction()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Reads]:
        """Reads, each statement on its own (no snapshot across them)."""
        yield _SqliteReads(await self._reading_connection())

    async def _reading_connection(self) -> Any:
        if self._reads is None:
            opening = aiosqlite.connect(self._path, isolation_level=None)
            opening._thread.daemon = True  # like SQLAlchemy's: never keeps the process alive
            conn = await opening
            await conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            if self._reads is None:
                self._reads = conn
            else:
                await conn.close()
        return self._reads

    async def close(self) -> None:
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
        if self._reads is not None:
            reads, self._reads = self._reads, None
            await reads.close()


_SQLITE_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default, for SQLAlchemy's commits on the same connection


def _begin_at_once(conn: sqlite3.Connection, begin: str, busy_timeout_ms: int) -> bool:
    """BEGIN on the loop if the write lock is free now; False (nothing begun) if another process holds it."""
    conn.execute("PRAGMA busy_timeout=0")
    try:
        conn.execute(begin)
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:  # the primary code of an extended one
            raise
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    return True


async def _keep(_conn: Any) -> None:
    """Nothing to reset on release: every transaction here ends in a commit or a rollback."""


# What a connection that died while it sat in the pool (a database restart, a firewall that dropped it
# silently: a half-open connection) raises at its first use: nothing of ours ran on it.
DEAD_CONNECTION: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionResetError, BrokenPipeError, TimeoutError on the socket
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.ConnectionFailureError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.exceptions.InterfaceError,  # "connection is closed"
)


class PostgresStore:
    """asyncpg's own pool: no pre-ping on checkout, no reset query on release (a statement is one round
    trip, and a checkout costs no more).

    A pooled connection that died meanwhile fails at its first use, before anything ran on it: the BEGIN
    of a transaction, or a reading's first statement. That use is tried again, once, on a fresh
    connection (the pool's other connections are expired: they died with it), so a database restart or
    a half-open connection costs no request. Nothing is retried once a statement of ours has run on the
    connection, and no round trip is added: the BEGIN is the check. An autocommit write is retried only
    when its caller says a second run is harmless (`rerun_safe`: a compare-and-set); otherwise it may
    have run, and its failure only expires the pool.
    """

    def __init__(self, dsn: str, *, max_size: int) -> None:
        self._dsn = dsn
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def _made(self) -> asyncpg.Pool:
        if self._pool is None:
            pool = await asyncpg.create_pool(self._dsn, min_size=0, max_size=self._max_size, reset=_keep)
            if self._pool is None:
                self._pool = pool
            else:
                await pool.close()
        return self._pool

    @asynccontextmanager
    async def transaction(self, *, many_rows: bool = False) -> AsyncIterator[Tx]:
        """Committed on exit, rolled back on an error; after-commit effects run once it committed.
        (`many_rows` matters on SQLite only.)"""
        pool = await self._made()
        for attempt in (1, 2):
            async with pool.acquire() as conn:
                begun = conn.transaction()
                try:
                    await begun.start()
                except DEAD_CONNECTION:
                    await pool.expire_connections()
                    if attempt == 2:
                        raise
                    continue  # nothing ran: again, on a fresh connection
                tx = _Postgres(conn)
                try:
                    yield tx
                except BaseException as exc:
                    if isinstance(exc, DEAD_CONNECTION):
                        await pool.expire_connections()
                    else:
                        await begun.rollback()
                    raise
                await begun.commit()
            tx.run_effects()
            return

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Reads]:
        """Reads, each statement on its own (no snapshot across them); the first is run again on a fresh
        connection if the pooled one was dead."""
        pool = await self._made()
        async with contextlib.AsyncExitStack() as held:

            async def fresh() -> Any:
                await pool.expire_connections()
                return await held.enter_async_context(pool.acquire())

            conn = await held.enter_async_context(pool.acquire())
            yield _Postgres(conn, again=fresh)

    @asynccontextmanager
    async def autocommit(self, *, rerun_safe: bool = False) -> AsyncIterator[Tx]:
        """Writes that each commit on their own (one round trip each: no BEGIN and COMMIT).

        `rerun_safe`: the first statement changes nothing when run twice (a compare-and-set on the
        row's version), so a pooled connection found dead by it is replaced and the statement sent
        again: a half-open connection costs the caller nothing."""
        pool = await self._made()
        async with contextlib.AsyncExitStack() as held:

            async def fresh() -> Any:
                await pool.expire_connections()
                return await held.enter_async_context(pool.acquire())

            conn = await held.enter_async_context(pool.acquire())
            tx = _Postgres(conn, again=fresh if rerun_safe else None)
            try:
                yield tx
            except DEAD_CONNECTION:
                await pool.expire_connections()
                raise
        tx.run_effects()

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
