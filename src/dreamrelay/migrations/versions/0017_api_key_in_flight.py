"""api_keys.in_flight: the key's tasks pending or processing, kept by the intake (+1 with the hold) and the
one state writer (-1 when the task finishes), in the same transactions, so the in-flight cap is one
indexed row instead of a count over the key's tasks

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("in_flight", sa.BigInteger(), nullable=False, server_default="0"))
    # The count as it stands (a relay is stopped while it migrates: nothing moves meanwhile).
    op.execute(
        "UPDATE api_keys SET in_flight = (SELECT count(*) FROM tasks WHERE tasks.api_key_id = api_keys.id"
        " AND tasks.state IN ('pending', 'processing'))"
    )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("in_flight")
