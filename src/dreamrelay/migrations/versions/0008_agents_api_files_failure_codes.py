"""Luma Agents API: uploaded files, tasks' failure_code, default prices of Ray 3.2 and Uni-1

Revision ID: 0008
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0009"
branch_labels = None
depends_on = None


def default_prices() -> list[dict[str, object]]:
    """Credits per task. Ray 3.2 by resolution (the 360p draft tier is cheapest), 10 s twice 5 s, HDR
    twice SDR, every action (generate, extend, video_edit, video_reframe) alike; Uni-1 per image."""
    rows: list[dict[str, object]] = []
    for resolution, base in (("360p", 15), ("540p", 40), ("720p", 80), ("1080p", 160)):
        for duration, length in (("5s", 1), ("10s", 2)):
            rows.append(
                {
                    "model": "ray-3.2",
                    "resolution": resolution,
                    "duration": duration,
                    "action": "*",
                    "credits": base * length,
                }
            )
            if resolution != "360p":  # no HDR drafts
                rows.append(
                    {
                        "model": "ray-3.2",
                        "resolution": f"{resolution}+hdr",
                        "duration": duration,
                        "action": "*",
                        "credits": base * length * 2,
                    }
                )
    rows.append({"model": "uni-1", "resolution": "*", "duration": "*", "action": "*", "credits": 4})
    rows.append({"model": "uni-1-max", "resolution": "*", "duration": "*", "action": "*", "credits": 10})
    return rows


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("failure_code", sa.String(length=32), nullable=True))
    op.create_table(
        "agent_files",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("mime_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("storage_key", sa.Text(), nullable=True),
        sa.Column("upload_token", sa.String(length=64), nullable=True),
        sa.Column("upload_expires_at", sa.Double(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=True),
        sa.Column("deleted_at", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name="fk_agent_files_account_id_accounts"),
        sa.PrimaryKeyConstraint("id", name="pk_agent_files"),
    )
    op.create_index("ix_agent_files_account_created", "agent_files", ["account_id", "created_at", "id"])
    prices = sa.table(
        "prices",
        sa.column("model", sa.String),
        sa.column("resolution", sa.String),
        sa.column("duration", sa.String),
        sa.column("action", sa.String),
        sa.column("credits", sa.BigInteger),
    )
    op.bulk_insert(prices, default_prices())


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM prices WHERE model IN ('ray-3.2', 'uni-1', 'uni-1-max')"))
    op.drop_index("ix_agent_files_account_created", table_name="agent_files")
    op.drop_table("agent_files")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("failure_code")
