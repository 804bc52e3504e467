"""tasks.change_seq: a change marker raised by every write of the one state writer (and the insert), so
each process's in-flight mirror (inflight.py) can read what changed since it last looked

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        # 0 for the rows written before: a mirror loads those on the first read instead.
        batch.add_column(sa.Column("change_seq", sa.BigInteger(), nullable=False, server_default="0"))
        batch.create_index("ix_tasks_change_seq", ["change_seq"])


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_change_seq")
        batch.drop_column("change_seq")
