"""Store preparation: migrate and seed (demo key, credits), and copy one real completed task row many
times, fast (SQLite: executemany in one transaction; PostgreSQL: COPY in one transaction)."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import update

from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.formats.own import iso_millis
from dreamrelay.runtime import Runtime
from dreamrelay.services.bootstrap import first_start
from dreamrelay.settings import Settings
from dreamrelay.store import accounts, ledger, migrate
from dreamrelay.store import tasks as task_store
from dreamrelay.store.schema import channels

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CREDITS = 10**14  # no benchmark may run out of balance (a balance is capped at 10**15)
CHUNK = 20_000


@dataclass(frozen=True)
class Prepared:
    key: str
    account_id: int
    more_keys: tuple[str, ...] = ()  # `extra_keys` more keys of the same account


def prepare_store(
    data_dir: Path,
    database_url: str | None = None,
    channel: Mapping[str, object] | None = None,
    extra_keys: int = 0,
) -> Prepared:
    """Migrate, first start (demo account, key, sandbox channel), credits; optionally re-point the channel
    and add `extra_keys` keys to the account."""

    async def work() -> Prepared:
        settings = Settings(data_dir=data_dir, database_url=database_url)
        async with Runtime.from_settings(settings) as rt:
            await migrate.upgrade(rt.db)
            seeded = await first_start(rt)
            if seeded is None:
                raise RuntimeError(f"{data_dir} is not a fresh store")
            async with rt.db.transaction() as conn:
                await ledger.top_up(conn, 1, CREDITS, note="benchmark credits")
                if channel:
                    await conn.execute(update(channels).where(channels.c.name == "sandbox").values(**channel))
                more = [(await accounts.create_key(conn, 1, f"bench-{n}"))[1] for n in range(extra_keys)]
        return Prepared(key=seeded.api_key, account_id=1, more_keys=tuple(more))

    return asyncio.run(work())


def sqlite_path(data_dir: Path) -> Path:
    return data_dir / "dreamrelay.db"


def pg_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


# ---- reading tasks back ------------------------------------------------------------------------


def task_rows(data_dir: Path, database_url: str | None, ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Raw task rows (every column) of `ids`, or of every task."""
    if database_url is None:
        conn = sqlite3.connect(sqlite_path(data_dir))
        conn.row_factory = sqlite3.Row
        try:
            if ids is None:
                rows = conn.execute("SELECT * FROM tasks").fetchall()
            else:
                rows = []
                for start in range(0, len(ids), 500):
                    part = ids[start : start + 500]
                    marks = ",".join("?" * len(part))
                    rows += conn.execute(f"SELECT * FROM tasks WHERE id IN ({marks})", part).fetchall()
            return [dict(r) for r in rows]
        finally:
            conn.close()

    async def work() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(pg_dsn(database_url))
        try:
            if ids is None:
                rows = await conn.fetch("SELECT * FROM tasks")
            else:
                rows = await conn.fetch("SELECT * FROM tasks WHERE id = ANY($1::varchar[])", ids)
            return [dict(r) for r in rows]
        finally:
            await conn.close()

    return asyncio.run(work())


def count_tasks(data_dir: Path, database_url: str | None) -> int:
    if database_url is None:
        conn = sqlite3.connect(sqlite_path(data_dir))
        try:
            return int(conn.execute("SELECT count(*) FROM tasks").fetchone()[0])
        finally:
            conn.close()

    async def work() -> int:
        conn = await asyncpg.connect(pg_dsn(database_url))
        try:
            return int(await conn.fetchval("SELECT count(*) FROM tasks"))
        finally:
            await conn.close()

    return asyncio.run(work())


# ---- copying a completed row -------------------------------------------------------------------


def _copies(template: dict[str, Any], count: int, ids_out: list[str]) -> Iterator[dict[str, Any]]:
    """`count` rows like `template` with a new id and creation time (also inside the stored body)."""
    old_id = template["id"]
    old_iso = iso_millis(template["created_at"]).encode()
    body = bytes(template["body"])
    now = time.time()
    rng = random.Random(count)
    for _ in range(count):
        new_id = str(uuid.uuid4())
        created = now - rng.uniform(60, 30 * 24 * 3600)
        new_body = body.replace(old_id.encode(), new_id.encode()).replace(
            old_iso, iso_millis(created).encode()
        )
        ids_out.append(new_id)
        yield {
            **template,
            "id": new_id,
            "body": new_body,
            "created_at": created,
            "updated_at": created + 10,
            "finished_at": created + 10,
            "deadline_at": created + 3600,
        }


def insert_copies(
    data_dir: Path, database_url: str | None, template: dict[str, Any], count: int
) -> tuple[list[str], float]:
    """Insert `count` copies of `template` in one transaction; returns their ids and the seconds it took."""
    ids: list[str] = []
    started = time.perf_counter()
    if database_url is None:
        _insert_sqlite(sqlite_path(data_dir), template, count, ids)
    else:
        asyncio.run(_insert_pg(pg_dsn(database_url), template, count, ids))
    return ids, time.perf_counter() - started


def _insert_sqlite(path: Path, template: dict[str, Any], count: int, ids: list[str]) -> None:
    columns = list(template)
    sql = f"INSERT INTO tasks ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, ([row[c] for c in columns] for row in _copies(template, count, ids)))
        conn.execute("COMMIT")
    finally:
        conn.close()


async def _insert_pg(dsn: str, template: dict[str, Any], count: int, ids: list[str]) -> None:
    columns = list(template)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            chunk: list[tuple[Any, ...]] = []
            for row in _copies(template, count, ids):
                chunk.append(tuple(row[c] for c in columns))
                if len(chunk) >= CHUNK:
                    await conn.copy_records_to_table("tasks", records=chunk, columns=columns)
                    chunk = []
            if chunk:
                await conn.copy_records_to_table("tasks", records=chunk, columns=columns)
        await conn.execute("ANALYZE tasks")  # what autovacuum would do soon after a bulk load
    finally:
        await conn.close()


# ---- a throwaway PostgreSQL database -----------------------------------------------------------


def pg_create(admin_dsn: str = PG_ADMIN) -> str | None:
    """Create a fresh database; its SQLAlchemy URL, or None when PostgreSQL is not reachable."""
    name = f"dreamrelay_bench_{uuid.uuid4().hex[:10]}"

    async def work() -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    try:
        asyncio.run(work())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


def pg_drop(database_url: str, admin_dsn: str = PG_ADMIN) -> None:
    name = database_url.rsplit("/", 1)[1]

    async def work() -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(work())


# ---- many tasks through the store layer (issue 32) ---------------------------------------------


def read_task(data_dir: Path, database_url: str | None, task_id: str) -> Task:
    """One task as the store reads it."""

    async def work() -> Task:
        async with Runtime.from_settings(Settings(data_dir=data_dir, database_url=database_url)) as rt:
            async with rt.db.reader() as conn:
                task = await task_store.get_task(conn, task_id)
        if task is None:
            raise RuntimeError(f"task {task_id} is not in the store")
        return task

    return asyncio.run(work())


def store_counts(data_dir: Path, database_url: str | None) -> tuple[int, int]:
    """Tasks in the store, and of them in flight (store/tasks.py::usage)."""

    async def work() -> tuple[int, int]:
        async with Runtime.from_settings(Settings(data_dir=data_dir, database_url=database_url)) as rt:
            async with rt.db.reader() as conn:
                lines = await task_store.usage(conn)
        total = sum(int(line["tasks"]) for line in lines)
        flying = sum(int(line["tasks"]) for line in lines if not TaskState(line["state"]).is_terminal)
        return total, flying

    return asyncio.run(work())


def _task_copies(template: Task, count: int, ids_out: list[str]) -> Iterator[dict[str, Any]]:
    """`count` tasks like `template` (every field `insert_task` takes), each with a new id and creation
    time, inside its stored body too; an in-flight one is not due for a day (nothing follows it)."""
    old_id, old_iso = template.id, iso_millis(template.created_at).encode()
    now = time.time()
    rng = random.Random(count)
    base = {f.name: getattr(template, f.name) for f in fields(Task)}
    flying = not template.state.is_terminal
    for _ in range(count):
        new_id = str(uuid.uuid4())
        created = now - rng.uniform(60, 3600 if flying else 30 * 24 * 3600)
        body = template.body.replace(old_id.encode(), new_id.encode()).replace(
            old_iso, iso_millis(created).encode()
        )
        ids_out.append(new_id)
        yield {
            **base,
            "id": new_id,
            "body": body,
            "created_at": created,
            "updated_at": created + 10,
            "finished_at": None if flying else created + 10,
            "deadline_at": now + 86400 if flying else created + 3600,
            "next_poll_at": now + 86400 if flying else None,
            "lease_owner": None,
            "lease_until": None,
        }


async def _analyze(dsn: str) -> None:
    """ANALYZE the tasks table, as autovacuum would soon after a bulk load. This host's PostgreSQL runs with
    autovacuum off: without it the table has no statistics, and the worker's sweep is then planned as a
    scan of every task (a sequential scan and sort: ≈ 75–170 ms of the database's CPU a sweep at 100,000
    in flight). BENCH_SEED_ANALYZE=0 leaves the table so."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE tasks")
    finally:
        await conn.close()


def insert_tasks(
    data_dir: Path, database_url: str | None, template: Task, count: int
) -> tuple[list[str], float]:
    """`count` copies of `template` through the store layer (store/tasks.py::insert_tasks: the driver's
    executemany, CHUNK rows a transaction, each key's in-flight number kept), then on PostgreSQL the
    table's statistics (`_analyze`); their ids and the seconds it took."""
    ids: list[str] = []

    async def work() -> None:
        async with Runtime.from_settings(Settings(data_dir=data_dir, database_url=database_url)) as rt:
            rows = _task_copies(template, count, ids)
            while chunk := list(itertools.islice(rows, CHUNK)):
                async with rt.db.direct_transaction(many_rows=True) as tx:
                    await task_store.insert_tasks(tx, chunk)
        if database_url is not None and os.environ.get("BENCH_SEED_ANALYZE", "1") != "0":
            await _analyze(pg_dsn(database_url))

    started = time.perf_counter()
    asyncio.run(work())
    return ids, time.perf_counter() - started
