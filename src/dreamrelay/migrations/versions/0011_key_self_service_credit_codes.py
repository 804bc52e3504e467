"""customer-managed keys (a per-account cap) and credit codes

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        # How many keys the customer may hold; set by the operator, null = DREAMRELAY_MAX_KEYS_PER_ACCOUNT.
        batch.add_column(sa.Column("max_keys", sa.Integer(), nullable=True))
    op.create_table(
        "credit_codes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("batch", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=True),
        sa.Column("redeemed_at", sa.Double(), nullable=True),
        sa.Column("redeemed_by", sa.Integer(), nullable=True),
        sa.Column("redeemed_key_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("amount > 0", name="ck_credit_codes_amount_positive"),
        sa.ForeignKeyConstraint(
            ["redeemed_by"],
            ["accounts.id"],
            name="fk_credit_codes_redeemed_by_accounts",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_credit_codes"),
        sa.UniqueConstraint("code_hash", name="uq_credit_codes_code_hash"),
    )
    op.create_index("ix_credit_codes_batch", "credit_codes", ["batch"])


def downgrade() -> None:
    op.drop_index("ix_credit_codes_batch", table_name="credit_codes")
    op.drop_table("credit_codes")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("max_keys")
