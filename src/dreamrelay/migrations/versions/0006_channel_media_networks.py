"""private networks a channel's finished media may be copied from (URL safety per channel)

Revision ID: 0006
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        # Comma-separated CIDRs; empty: media URLs must be public addresses like any fetched URL.
        batch.add_column(sa.Column("media_networks", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("media_networks")
