"""Migrations: up, down and up again on both stores, and the models never drift from them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

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


def test_an_existing_database_with_data_upgrades_to_head(tmp_path: Path, store_url: str | None) -> None:
    """A relay that has run for a while (accounts, keys, tasks, ledger rows) upgrades without losing
    a row: table rebuilds on SQLite must not trip over the rows that reference the rebuilt table."""
    url = store_url or f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"

    async def run() -> dict[str, int]:
        db = Database(url)
        try:
            await migrate.upgrade(db, "0005")
            async with db.transaction() as conn:
                await conn.execute(
                    text("INSERT INTO accounts (id, name, balance, created_at) VALUES (1, 'old', 90, 0)")
                )
                await conn.execute(
                    text(
                        "INSERT INTO api_keys (id, account_id, key_hash, prefix, created_at)"
                        " VALUES (1, 1, :h, 'dr-old', 0)"
                    ),
                    {"h": "0" * 64},
                )
                await conn.execute(
                    text(
                        "INSERT INTO tasks (id, account_id, api_key_id, action, model, request, state, body,"
                        " created_at, updated_at, deadline_at, price) VALUES ('t-1', 1, 1, 'generate',"
                        " 'ray-v2', '{}', 'completed', :b, 0, 0, 0, 10), ('t-2', 1, 1, 'generate',"
                        " 'ray-v2', '{}', 'processing', :b, 0, 0, 0, 0)"
                    ),
                    {"b": b"{}"},
                )
                await conn.execute(
                    text(
                        "INSERT INTO ledger (account_id, task_id, kind, amount, note, created_at)"
                        " VALUES (1, NULL, 'topup', 100, '', 0), (1, 't-1', 'hold', -10, '', 0)"
                    )
                )
            await migrate.upgrade(db)
            async with db.reader() as conn:
                assert await conn.run_sync(_diff) == []
                counts = {
                    table: int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
                    for table in ("accounts", "api_keys", "tasks", "ledger")
                }
                balance = (await conn.execute(text("SELECT balance FROM accounts WHERE id = 1"))).scalar_one()
                # 0017 counts the key's tasks in flight as it stands (store/in_flight.py keeps it after).
                held = (await conn.execute(text("SELECT in_flight FROM api_keys WHERE id = 1"))).scalar_one()
            return {**counts, "balance": int(balance), "in_flight": int(held)}
        finally:
            await db.dispose()

    assert asyncio.run(run()) == {
        "accounts": 1,
        "api_keys": 1,
        "tasks": 2,
        "ledger": 2,
        "balance": 90,
        "in_flight": 1,
    }
