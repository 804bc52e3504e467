"""Database engines: one pool on PostgreSQL; a reader and an IMMEDIATE-writer pool on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from dreamrelay.private_files import PRIVATE_DIR, private_file
from dreamrelay.store import direct

SQLITE_BUSY_TIMEOUT_MS = 15000
_AFTER_COMMIT = "dreamrelay_after_commit"


def after_commit(conn: AsyncConnection, effect: Callable[[], None]) -> None:
    """Run `effect` once the transaction `conn` is in commits; forget it if the transaction rolls back."""
    conn.sync_connection.info.setdefault(_AFTER_COMMIT, []).append(effect)  # type: ignore[union-attr]


class _OnConnection:
    """store/direct.py's `Tx` on a SQLAlchemy connection's transaction: the same `Sql` statements, sent
    to the driver as they are (no compiling), with after-commit effects on the connection's transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._sqlite = conn.dialect.name == "sqlite"

    def _text(self, sql: direct.Sql) -> str:
        return sql.sqlite if self._sqlite else sql.postgresql

    async def rows(self, sql: direct.Sql, *params: Any) -> list[direct.Row]:
        return list((await self._conn.exec_driver_sql(self._text(sql), params)).all())

    async def run(self, sql: direct.Sql, *params: Any) -> int:
        return int((await self._conn.exec_driver_sql(self._text(sql), params)).rowcount)

    async def run_many(self, sql: direct.Sql, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.exec_driver_sql(self._text(sql), [tuple(row) for row in rows])

    def after_commit(self, effect: Callable[[], None]) -> None:
        after_commit(self._conn, effect)


def on_connection(conn: AsyncConnection) -> direct.Tx:
    """The driver-statement API (`Tx`) inside `conn`'s transaction: what the ledger's capture and release
    run on within a transition, as its hold runs on `Database.direct_transaction`."""
    return _OnConnection(conn)


def _forget_effects(conn: Any) -> None:
    if conn.invalidated:
        # A statement was cancelled or its connection lost: the DBAPI connection, and its `info` with
        # the effects, is being thrown away. Reading `info` now would raise PendingRollbackError out of
        # the connection's close, in place of the cancellation.
        return
    conn.info.pop(_AFTER_COMMIT, None)


def _run_effects(conn: Any) -> None:
    for effect in conn.info.pop(_AFTER_COMMIT, ()):
        effect()


def _track_effects(engine: AsyncEngine) -> None:
    # `info` belongs to the pooled DBAPI connection and outlives one checkout: clear it on every begin
    # and rollback, run it on commit.
    event.listen(engine.sync_engine, "begin", _forget_effects)
    event.listen(engine.sync_engine, "rollback", _forget_effects)
    event.listen(engine.sync_engine, "commit", _run_effects)


class Database:
    """Owns the engines. `transaction()` for writes, `reader()` for reads; both commit/close on exit."""

    def __init__(self, url: str, *, connections: int = 20) -> None:
        """`connections`: PostgreSQL connections this process opens at most, half on the driver's pool
        (store/direct.py) and half on SQLAlchemy's (its pool size, with no overflow)."""
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                # Owner-only before SQLite opens it: its WAL and shared memory take the file's mode.
                database = Path(parsed.database)
                database.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
                private_file(database)
                for suffix in ("-wal", "-shm", "-journal"):  # left by an older start
                    private_file(database.with_name(database.name + suffix), create=False)
            # SQLite has one writer at a time: writers start with BEGIN IMMEDIATE so they queue on
            # the lock up front instead of failing to upgrade a read lock mid-transaction.
            # Its connections are not rolled back on return: SQLAlchemy's own transactions end before
            # the connection goes back, the driver is in autocommit mode, and store/direct.py ends
            # every transaction it begins; the reset was one more hop to aiosqlite's thread each time.
            self._writer = _sqlite_engine(url, begin="BEGIN IMMEDIATE", pool_size=1, reset_on_return=None)
            self._reader = _sqlite_engine(url, begin="BEGIN", pool_size=4)
            self._direct: direct.SqliteStore | direct.PostgresStore = direct.SqliteStore(
                self._writer,
                parsed.database or ":memory:",
                begin="BEGIN IMMEDIATE",
                busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS,
            )
        else:
            direct_share = max(1, connections // 2)
            self._writer = create_async_engine(
                url, pool_size=max(1, connections - direct_share), max_overflow=0, pool_pre_ping=True
            )
            self._reader = self._writer
            dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            self._direct = direct.PostgresStore(dsn, max_size=direct_share)
        _track_effects(self._writer)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def engine(self) -> AsyncEngine:
        return self._writer

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self._writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.connect() as conn:
            yield conn

    async def ping(self) -> None:
        """One round trip on a reader's connection (readiness); raises if the database does not answer."""
        async with self._reader.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def direct_transaction(self, *, many_rows: bool = False) -> AbstractAsyncContextManager[direct.Tx]:
        """A write transaction on the driver (store/direct.py); `many_rows` for one that writes a batch."""
        return self._direct.transaction(many_rows=many_rows)

    def direct_autocommit(self, *, rerun_safe: bool = False) -> AbstractAsyncContextManager[direct.Tx]:
        """Writes on the driver (store/direct.py) that each commit on their own: for one statement.
        `rerun_safe`: it is a compare-and-set, sent again if the pooled connection was found dead."""
        return self._direct.autocommit(rerun_safe=rerun_safe)

    def direct_reader(self) -> AbstractAsyncContextManager[direct.Reads]:
        """Reads on the driver (store/direct.py), each statement on its own."""
        return self._direct.reading()

    async def dispose(self) -> None:
        await self._direct.close()
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()


def _sqlite_engine(
    url: str, *, begin: str, pool_size: int, reset_on_return: Literal["rollback"] | None = "rollback"
) -> AsyncEngine:
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=0, pool_timeout=60, pool_reset_on_return=reset_on_return
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so our BEGIN below is the only one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine
