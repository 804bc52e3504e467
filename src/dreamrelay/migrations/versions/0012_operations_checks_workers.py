"""what operators watch: periodic check results, live worker processes, tasks by state and channel

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checks",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        sa.Column("checked_at", sa.Double(), nullable=False),
    )
    op.create_table(
        "workers",
        sa.Column("instance", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False, server_default=""),
        sa.Column("pid", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("heartbeat_at", sa.Double(), nullable=False),
    )
    # Tasks in flight by state and channel, read at every /metrics scrape: an index range, not a scan.
    op.create_index("ix_tasks_state_channel", "tasks", ["state", "channel_id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_state_channel", table_name="tasks")
    op.drop_table("workers")
    op.drop_table("checks")
