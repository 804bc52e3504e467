"""per-key envelope of the batch query (api_keys.batch_envelope) and the top-level `prompt` in
stored own-format task bodies

Revision ID: 0010
Revises: 0005
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0005"
branch_labels = None
depends_on = None

PAGE = 500


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        # bare: the seed's JSON array; newapi: {"code": "success", "message": "", "data": [...]}
        batch.add_column(sa.Column("batch_envelope", sa.String(8), nullable=False, server_default="bare"))
    _rewrite_bodies(_with_prompt)


def downgrade() -> None:
    _rewrite_bodies(_without_prompt)
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("batch_envelope")


def _with_prompt(task: dict[str, Any]) -> dict[str, Any] | None:
    """The own-format object gains `prompt` (= request.prompt), keys kept in alphabetical order."""
    request = task.get("request")
    if "prompt" in task or not isinstance(request, dict) or "prompt" not in request:
        return None
    return dict(sorted({**task, "prompt": request["prompt"]}.items()))


def _without_prompt(task: dict[str, Any]) -> dict[str, Any] | None:
    if "prompt" not in task:
        return None
    return {key: value for key, value in task.items() if key != "prompt"}


def _rewrite_bodies(change: Any) -> None:
    """Video tasks keep their pre-encoded own-format object in `body` (image tasks hold Kling's data
    object, left alone). Bodies are rewritten in pages, in id order, compactly as orjson writes them."""
    conn = op.get_bind()
    tasks = sa.table("tasks", sa.column("id", sa.String), sa.column("action", sa.String), sa.column("body"))
    last = ""
    while True:
        rows = conn.execute(
            sa.select(tasks.c.id, tasks.c.body)
            .where(tasks.c.id > last, tasks.c.action != "image")
            .order_by(tasks.c.id)
            .limit(PAGE)
        ).all()
        if not rows:
            return
        for task_id, body in rows:
            try:
                task = json.loads(bytes(body))
            except ValueError:
                continue
            changed = change(task) if isinstance(task, dict) else None
            if changed is not None:
                encoded = json.dumps(changed, ensure_ascii=False, separators=(",", ":")).encode()
                conn.execute(sa.update(tasks).where(tasks.c.id == task_id).values(body=encoded))
        last = rows[-1][0]
