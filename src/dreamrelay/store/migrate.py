"""Apply Alembic migrations to the configured database (at `serve` start and by `dreamrelay migrate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from dreamrelay.store.engine import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_PG_MIGRATION_LOCK = 7_345_118  # advisory lock id: concurrent starts migrate one at a time


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def upgrade(db: Database, revision: str = "head") -> None:
    async with db.transaction() as conn:
        if not db.is_sqlite:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        await conn.run_sync(_run, "upgrade", revision)


async def downgrade(db: Database, revision: str) -> None:
    async with db.transaction() as conn:
        await conn.run_sync(_run, "downgrade", revision)


def _run(sync_conn: Any, direction: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = sync_conn
    getattr(command, direction)(config, revision)
