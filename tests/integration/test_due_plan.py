"""The worker's sweep reads the tasks due, not every task in flight (issue 32 item 3): SQLite plans
`store/tasks.py::due_statement` through the due index (ix_tasks_due) in next-poll order, with no sort,
in each of its forms (a sweep, a channel's ride-along, a sweep skipping busy channels), on a store with
tasks in flight that are not due; on PostgreSQL too, with the table's statistics."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.dialects import postgresql, sqlite

from dreamrelay.store import tasks as task_store
from tests.support.templates import copy_migrated_sqlite, migrated_postgres_database

FORMS: dict[str, dict[str, Any]] = {
    "sweep": {},
    "ride-along": {"horizon": 2.0, "channel_id": 1},
    "skipping busy channels": {"skip_channels": [1, 2]},
}


@pytest.mark.parametrize("form", FORMS)
def test_a_sweep_walks_the_due_index(tmp_path: Path, form: str) -> None:
    path = tmp_path / "dreamrelay.db"
    copy_migrated_sqlite(path)
    statement = task_store.due_statement(now=1e9, limit=50, **FORMS[form])
    sql = str(statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with sqlite3.connect(path) as conn:
        conn.execute("ANALYZE")
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    assert any("ix_tasks_due" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan  # no sort of what it read


@pytest.fixture
def pg_store() -> Iterator[str]:
    yield from migrated_postgres_database()


def _pg_plan(url: str, sql: str) -> list[str]:
    async def work() -> list[str]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            await conn.execute("SET session_replication_role = replica")  # rows without their accounts
            await conn.execute(
                "INSERT INTO tasks (id, account_id, channel_id, action, model, request, state, body,"
                " created_at, updated_at, deadline_at, next_poll_at)"
                " SELECT md5(g::text), 1, 1 + g % 2, 'generate', 'ray-2', '{}', 'pending', '\\x00', 0, 0, 0,"
                " CASE WHEN g <= 50 THEN 1e9 - g ELSE 2e9 + g END FROM generate_series(1, 20000) g"
            )
            await conn.execute("ANALYZE tasks")  # what autovacuum keeps (this host's runs with it off)
            return [row[0] for row in await conn.fetch(f"EXPLAIN {sql}")]
        finally:
            await conn.close()

    return asyncio.run(work())


@pytest.mark.parametrize("form", FORMS)
def test_a_sweep_walks_the_due_index_on_postgresql(pg_store: str, form: str) -> None:
    """On PostgreSQL with the table's statistics (20,000 in flight, 50 due), each form reads the due index,
    never the whole table. Without statistics (autovacuum off, or just after a bulk load) PostgreSQL plans
    a sequential scan and sort of every task instead (docs/decisions.md)."""
    statement = task_store.due_statement(now=1e9, limit=50, **FORMS[form])
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    sql += " FOR UPDATE SKIP LOCKED"  # as store/leases.py::take claims them on PostgreSQL
    plan = _pg_plan(pg_store, sql)
    assert any("ix_tasks_due" in step for step in plan), plan
    assert not any("Seq Scan" in step for step in plan), plan
