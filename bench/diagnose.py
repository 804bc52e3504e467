"""Below the HTTP layer: what the batch query costs in the store itself, measured in this process.

For n ids it reports SQLite's plan for the statement `store/tasks.py::get_bodies` sends, the time of
that statement on a bare sqlite3 connection, the same lookup by primary key only (account checked
afterwards), and the product's own read path (`Database.reader()` + `get_bodies`: SQLAlchemy async,
aiosqlite thread, pool, BEGIN/ROLLBACK)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy.dialects import sqlite as sqlite_dialect

from dreamrelay.runtime import Runtime
from dreamrelay.settings import Settings
from dreamrelay.store import tasks as task_store


def product_sql(ids: list[str]) -> tuple[str, list[Any]]:
    """The statement of store/tasks.py::get_bodies, compiled as SQLite receives it."""
    statement = task_store.bodies_statement(ids)
    compiled = statement.compile(
        dialect=sqlite_dialect.dialect(), compile_kwargs={"render_postcompile": True}
    )
    params = [compiled.params[name] for name in compiled.positiontup or []]
    return str(compiled), params


def _time(work: Any, budget: float = 0.5, at_most: int = 2000) -> float:
    """Median-free simple mean of repeated calls within `budget` seconds, in ms."""
    work()
    count, started = 0, time.perf_counter()
    while count < at_most and time.perf_counter() - started < budget:
        work()
        count += 1
    return (time.perf_counter() - started) / max(count, 1) * 1000


def sqlite_batch(data_dir: Path, ids: list[str], account_id: int = 1) -> dict[str, Any]:
    conn = sqlite3.connect(data_dir / "dreamrelay.db")
    try:
        sql, params = product_sql(ids)
        plan = " / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
        product_ms = _time(lambda: conn.execute(sql, params).fetchall())
        marks = ",".join("?" * len(ids))
        pk_sql = f"SELECT id, account_id, body FROM tasks WHERE id IN ({marks})"

        def by_key() -> None:
            {r[0]: r[2] for r in conn.execute(pk_sql, ids) if r[1] == account_id}

        pk_ms = _time(by_key)
    finally:
        conn.close()
    return {
        "ids": len(ids),
        "plan": plan,
        "product_sql_ms": round(product_ms, 3),
        "pk_only_ms": round(pk_ms, 3),
    }


def read_path_ms(data_dir: Path, ids: list[str], account_id: int = 1) -> float:
    """Mean ms of the product's read path for one batch: reader() + get_bodies, no HTTP."""

    async def work() -> float:
        rt = Runtime.from_settings(Settings(data_dir=data_dir))
        try:

            async def once() -> None:
                async with rt.db.reader() as conn:
                    await task_store.get_bodies(conn, ids, account_id)

            await once()
            count, started = 0, time.perf_counter()
            while count < 2000 and time.perf_counter() - started < 0.5:
                await once()
                count += 1
            return (time.perf_counter() - started) / max(count, 1) * 1000
        finally:
            await rt.close()

    return asyncio.run(work())


def layers(data_dir: Path, ids: list[str], sizes: tuple[int, ...] = (1, 100, 1000)) -> list[dict[str, Any]]:
    out = []
    for n in sizes:
        found = sqlite_batch(data_dir, ids[:n])
        found["read_path_ms"] = round(read_path_ms(data_dir, ids[:n]), 3)
        out.append(found)
        print(
            f"    {n:>4} ids: store read path {found['read_path_ms']:.3f} ms; its SQL alone "
            f"{found['product_sql_ms']:.3f} ms ({found['plan']}); "
            f"primary key only {found['pk_only_ms']:.3f} ms",
            flush=True,
        )
    return out
