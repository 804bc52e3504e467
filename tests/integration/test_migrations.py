"""Migrations: up, down and up again on both stores, and the models never drift from them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from dreamrelay.store import migrate
from dreamrelay.store.engine import Database
from dreamrelay.store.schema import metadata


def _diff(sync_conn: Any) -> list[Any]:
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tables(sync_conn: Any) -> set[str]:
    return set(inspect(sync_conn).get_table_names())


def test_upgrade_downgrade_upgrade_leaves_no_drift(tmp_path: Path, store_url: str | None) -> None:
    url = store_url or f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"

    async def run() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db)
            async with db.reader() as conn:
                assert await conn.run_sync(_diff) == []
                assert {
                    "accounts",
                    "api_keys",
                    "channels",
                    "tasks",
                    "ledger",
                    "prices",
                } <= await conn.run_sync(_tables)
            await migrate.downgrade(db, "base")
            async with db.reader() as conn:
                assert await conn.run_sync(_tables) <= {"alembic_version"}
            await migrate.upgrade(db)
            await migrate.upgrade(db)  # a second start changes nothing
            async with db.reader() as conn:
                assert await conn.run_sync(_diff) == []
        finally:
            await db.dispose()

    asyncio.run(run())
