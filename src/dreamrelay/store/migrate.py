"""Apply Alembic migrations to the configured database (at `serve` start and by `dreamrelay migrate`)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import exc, text

from dreamrelay.store.engine import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_PG_MIGRATION_LOCK = 7_345_118  # advisory lock id: concurrent starts migrate one at a time


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@functools.cache
def head_revision() -> str | None:
    """The newest migration of this code (read from the scripts once per process)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def at_head(db: Database) -> bool:
    """Whether the store is at this code's newest migration already: the usual case at every start, told
    by one query instead of Alembic loading every migration script to find out."""
    try:
        async with db.engine.connect() as conn:
            found = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    except exc.DBAPIError:  # no alembic_version table yet: a new store
        return False
    return found == [head_revision()]


async def upgrade(db: Database, revision: str = "head") -> None:
    if revision == "head" and await at_head(db):
        return
    if db.is_sqlite:
        await _sqlite_migration(db, "upgrade", revision)
        return
    async with db.transaction() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        await conn.run_sync(_run, "upgrade", revision)


async def downgrade(db: Database, revision: str) -> None:
    if db.is_sqlite:
        await _sqlite_migration(db, "downgrade", revision)
        return
    async with db.transaction() as conn:
        await conn.run_sync(_run, "downgrade", revision)


async def _sqlite_migration(db: Database, direction: str, revision: str) -> None:
    """SQLite rebuilds a table to alter it (batch mode): with foreign keys enforced, dropping the old
    copy of a table that other rows reference fails. They are switched off for the migration (the
    switch only works outside a transaction), and every reference is checked before it commits."""
    async with db.engine.connect() as conn:
        await conn.run_sync(_foreign_keys, False)
        try:
            async with conn.begin():
                await conn.run_sync(_run, direction, revision)
                broken = (await conn.execute(text("PRAGMA foreign_key_check"))).all()
                if broken:
                    raise RuntimeError(f"migration left rows pointing nowhere: {broken[:5]}")
        finally:
            await conn.run_sync(_foreign_keys, True)


def _foreign_keys(sync_conn: Any, on: bool) -> None:
    cursor = sync_conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def _run(sync_conn: Any, direction: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = sync_conn
    getattr(command, direction)(config, revision)
