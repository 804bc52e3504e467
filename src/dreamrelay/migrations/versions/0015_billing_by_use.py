"""billing by what was used: a price rule's unit (per task, or per million tokens), the tasks' token rate,
usage and charge, model names and failure codes up to 64 characters (Ark's), default Seedance prices

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# Credits per million tokens of `usage.completion_tokens`; operators change them with `dreamrelay prices`.
# For comparison: ray-v2 720p 5 s = 100 credits per task; a 720p 16:9 5 s Seedance clip is 102 960 tokens
# (52 credits at 500), and its hold is priced on the widest ratio, 21:9 (112 800 tokens, 57 credits).
SEEDANCE_PRICES = {
    "doubao-seedance-1-0-pro-250528": 500,
    "doubao-seedance-1-0-pro-fast-251015": 200,
    "doubao-seedance-1-0-lite-t2v-250428": 350,
    "doubao-seedance-1-0-lite-i2v-250428": 350,
    "doubao-seedance-1-5-pro-251215": 550,
    "doubao-seedance-2-0-260128": 900,
    "doubao-seedance-2-0-fast-260128": 600,
}


def default_prices() -> list[dict[str, Any]]:
    return [
        {"model": model, "resolution": "*", "duration": "*", "action": "generate", "credits": credits,
         "unit": "1m_tokens"}
        for model, credits in SEEDANCE_PRICES.items()
    ]  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("prices") as batch:
        batch.alter_column("model", type_=sa.String(64), existing_type=sa.String(32), existing_nullable=False)
        batch.add_column(sa.Column("unit", sa.String(16), nullable=False, server_default="task"))
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("model", type_=sa.String(64), existing_type=sa.String(32), existing_nullable=False)
        # Ark's failure codes are longer (OutputVideoSensitiveContentDetected: 35 characters).
        batch.alter_column("failure_code", type_=sa.String(64), existing_type=sa.String(32))
        batch.add_column(sa.Column("token_rate", sa.BigInteger()))
        batch.add_column(sa.Column("usage_tokens", sa.BigInteger()))
        batch.add_column(sa.Column("charged", sa.BigInteger()))
    table = sa.table(
        "prices",
        sa.column("model", sa.String),
        sa.column("resolution", sa.String),
        sa.column("duration", sa.String),
        sa.column("action", sa.String),
        sa.column("credits", sa.BigInteger),
        sa.column("unit", sa.String),
    )
    op.bulk_insert(table, default_prices())


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM prices WHERE unit <> 'task'"))
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("charged")
        batch.drop_column("usage_tokens")
        batch.drop_column("token_rate")
        batch.alter_column("failure_code", type_=sa.String(32), existing_type=sa.String(64))
        batch.alter_column("model", type_=sa.String(32), existing_type=sa.String(64), existing_nullable=False)
    with op.batch_alter_table("prices") as batch:
        batch.drop_column("unit")
        batch.alter_column("model", type_=sa.String(32), existing_type=sa.String(64), existing_nullable=False)
