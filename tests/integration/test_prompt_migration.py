"""Migration 0010: bodies stored before the top-level `prompt` gain it, in key order."""

from __future__ import annotations

import asyncio
import importlib
import json
from pathlib import Path

import sqlalchemy as sa

from dreamrelay.store import migrate
from dreamrelay.store.engine import Database

MIGRATION = importlib.import_module("dreamrelay.migrations.versions.0010_batch_envelope_top_level_prompt")

OLD_BODY = {
    "artifact": None,
    "created_at": "2026-11-29T10:00:00.000Z",
    "failure_reason": None,
    "id": "t-old",
    "last_frame": None,
    "request": {"aspect_ratio": "16:9", "prompt": "老照片 a paper boat"},
    "state": "pending",
    "thumbnail": None,
    "video": None,
    "video_raw": None,
}
IMAGE_BODY = {"task_id": "t-img", "task_status": "submitted"}


def _insert(conn: sa.Connection) -> None:
    conn.execute(sa.text("INSERT INTO accounts (id, name, balance, created_at) VALUES (1, 'a', 0, 0)"))
    for task_id, action, body in (("t-old", "generate", OLD_BODY), ("t-img", "image", IMAGE_BODY)):
        conn.execute(
            sa.text(
                "INSERT INTO tasks (id, account_id, action, model, request, state, body, created_at,"
                " updated_at, deadline_at) VALUES"
                " (:id, 1, :action, 'ray-v2', '{}', 'pending', :body, 0, 0, 0)"
            ),
            {"id": task_id, "action": action, "body": json.dumps(body, separators=(",", ":")).encode()},
        )


def _bodies(conn: sa.Connection) -> dict[str, bytes]:
    return {row[0]: bytes(row[1]) for row in conn.execute(sa.text("SELECT id, body FROM tasks"))}


def test_old_bodies_gain_the_top_level_prompt(tmp_path: Path, store_url: str | None) -> None:
    url = store_url or f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"

    async def run() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db, "0005")
            async with db.transaction() as conn:
                await conn.run_sync(_insert)
            await migrate.upgrade(db, "0010")
            async with db.reader() as conn:
                after = await conn.run_sync(_bodies)
            task = json.loads(after["t-old"])
            assert list(task) == sorted(task) and task["prompt"] == "老照片 a paper boat"
            assert list(task).index("prompt") == list(task).index("last_frame") + 1
            assert {k: v for k, v in task.items() if k != "prompt"} == OLD_BODY
            assert "老照片".encode() in after["t-old"]  # written as UTF-8, like orjson, not \\u escapes
            assert json.loads(after["t-img"]) == IMAGE_BODY  # image tasks hold Kling's object: untouched
            # Downgrading takes the key out again (later revisions' downgrades need an empty store on
            # SQLite, so the down step is checked on the body itself).
            assert MIGRATION._without_prompt(task) == OLD_BODY
            assert MIGRATION._with_prompt(task) is None  # a second run changes nothing
        finally:
            await db.dispose()

    asyncio.run(run())
