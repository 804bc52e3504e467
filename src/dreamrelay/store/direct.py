"""The submit path's statements on the database driver itself, without SQLAlchemy's per-statement work.

Through SQLAlchemy a statement costs ≈ 200 µs of CPU on either store (cache key, compile-cache lookup,
result objects, and on SQLite four thread hops through aiosqlite: cursor, execute, fetch, close); on the
driver it costs ≈ 25 µs (one aiosqlite hop, or one asyncpg round trip). The few statements every submit
runs (price, hold, in-flight count, task row, idempotency record, the dispatch update) go this way; the
connections still come from the same pools, so SQLite's one writer at a time still holds.

SQL is written once with `?` placeholders (`Sql`), turned into `$1, $2, …` for PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

Row = Sequence[Any]


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


class Tx(Protocol):
    """Statements inside one transaction (or, for `reading`, one connection)."""

    async def rows(self, sql: Sql, *params: Any) -> list[Row]:
        """The rows a query (or a statement with RETURNING) gives."""
        ...

    async def run(self, sql: Sql, *params: Any) -> int:
        """Run a write; how many rows it changed."""
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


class _Sqlite(_Effects):
    def __init__(self, conn: Any) -> None:
        super().__init__()
        self._conn = conn  # aiosqlite.Connection: every call below is one hop to its thread

    async def rows(self, sql: Sql, *params: Any) -> list[Row]:
        try:
            return list(await self._conn.execute_fetchall(sql.sqlite, params))
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(sql.sqlite, params, exc) from exc

    async def run(self, sql: Sql, *params: Any) -> int:
        try:
            cursor = await self._conn.execute(sql.sqlite, params)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(sql.sqlite, params, exc) from exc
        return int(cursor.rowcount)


class _Postgres(_Effects):
    def __init__(self, conn: Any) -> None:
        super().__init__()
        self._conn = conn  # asyncpg.Connection

    async def rows(self, sql: Sql, *params: Any) -> list[Row]:
        try:
            return list(await self._conn.fetch(sql.postgresql, *params))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(sql.postgresql, params, exc) from exc

    async def run(self, sql: Sql, *params: Any) -> int:
        try:
            status = await self._conn.execute(sql.postgresql, *params)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(sql.postgresql, params, exc) from exc
        return int(status.rsplit(" ", 1)[-1])  # "UPDATE 1", "INSERT 0 1"


@asynccontextmanager
async def transaction(engine: AsyncEngine, *, sqlite_begin: str | None) -> AsyncIterator[Tx]:
    """A write transaction on a connection of `engine`'s pool: committed on exit, rolled back on an error.

    `sqlite_begin` is the statement that opens it on SQLite (BEGIN IMMEDIATE: take the write lock first);
    None means PostgreSQL.
    """
    async with engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        tx: _Sqlite | _Postgres
        if sqlite_begin is None:
            tx = _Postgres(driver)
            async with driver.transaction():
                yield tx
        else:
            tx = _Sqlite(driver)
            await driver.execute(sqlite_begin)
            try:
                yield tx
            except BaseException:
                await driver.rollback()
                raise
            await driver.commit()
    tx.run_effects()


@asynccontextmanager
async def reading(engine: AsyncEngine, *, sqlite: bool) -> AsyncIterator[Tx]:
    """Reads on a connection of `engine`'s pool, each statement on its own (no snapshot across them)."""
    async with engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        yield _Sqlite(driver) if sqlite else _Postgres(driver)
