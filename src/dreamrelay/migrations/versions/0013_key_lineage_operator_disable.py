"""key lineage (api_keys.parent_id: the key that created it) and the operator's own disable
(api_keys.disabled_by_operator, apart from the customer's `disabled`)

Revision ID: 0013
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        # Null: issued by the operator. A key's descendants go when it is deleted.
        batch.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("disabled_by_operator", sa.Boolean(), nullable=False, server_default="0"))
        batch.create_foreign_key(
            "fk_api_keys_parent_id_api_keys", "api_keys", ["parent_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_api_keys_parent_id", ["parent_id"])
    # Who disabled a key before this revision is not recorded: the operator is assumed, so only the
    # operator can lift it (the safe side; the operator can always enable it again).
    op.execute("UPDATE api_keys SET disabled_by_operator = disabled, disabled = false WHERE disabled")


def downgrade() -> None:
    op.execute("UPDATE api_keys SET disabled = true WHERE disabled_by_operator")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_parent_id")
        batch.drop_constraint("fk_api_keys_parent_id_api_keys", type_="foreignkey")
        batch.drop_column("disabled_by_operator")
        batch.drop_column("parent_id")
