"""customer deletion of tasks (deleted_at) and the default price of a Kling image

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

IMAGE_PRICE = {"model": "kling-image", "resolution": "*", "duration": "*", "action": "image", "credits": 5}


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        # Set by DELETE /dream-machine/v1/generations/{id}: hidden from every customer read from then on.
        batch.add_column(sa.Column("deleted_at", sa.Double(), nullable=True))
    prices = sa.table(
        "prices",
        sa.column("model", sa.String),
        sa.column("resolution", sa.String),
        sa.column("duration", sa.String),
        sa.column("action", sa.String),
        sa.column("credits", sa.BigInteger),
    )
    # Credits per image: a Kling task of n images holds n times this.
    op.bulk_insert(prices, [IMAGE_PRICE])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM prices WHERE model = 'kling-image' AND action = 'image'"))
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("deleted_at")
