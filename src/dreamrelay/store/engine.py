"""Database engines: one pool on PostgreSQL; a reader and an IMMEDIATE-writer pool on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from dreamrelay.store import direct

SQLITE_BUSY_TIMEOUT_MS = 15000
_AFTER_COMMIT = "dreamrelay_after_commit"


def after_commit(conn: AsyncConnection, effect: Callable[[], None]) -> None:
    """Run `effect` once the transaction `conn` is in commits; forget it if the transaction rolls back."""
    conn.sync_connection.info.setdefault(_AFTER_COMMIT, []).append(effect)  # type: ignore[union-attr]


def _forget_effects(conn: Any) -> None:
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

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
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
            self._writer = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
            self._reader = self._writer
            dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            self._direct = direct.PostgresStore(dsn, max_size=10)
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

    def direct_transaction(self, *, many_rows: bool = False) -> AbstractAsyncContextManager[direct.Tx]:
        """A write transaction on the driver (store/direct.py); `many_rows` for one that writes a batch."""
        return self._direct.transaction(many_rows=many_rows)

    def direct_autocommit(self) -> AbstractAsyncContextManager[direct.Tx]:
        """Writes on the driver (store/direct.py) that each commit on their own: for one statement."""
        return self._direct.autocommit()

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
