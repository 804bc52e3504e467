"""money columns hold integers within ±2^53 (CHECK constraints); console sign-outs every process honours

Revision ID: 0007
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0008"
branch_labels = None
depends_on = None

BOUND = 2**53  # dreamrelay.domain.ranges.STORE_MAX_CREDITS; a migration keeps its own copy

# (table, constraint name, column, lowest, nullable): each column an integer in [lowest, BOUND].
CHECKS = (
    ("accounts", "ck_accounts_balance_range", "balance", 0, False),
    ("ledger", "ck_ledger_amount_range", "amount", -BOUND, False),
    ("tasks", "ck_tasks_price_range", "price", 0, False),
    ("prices", "ck_prices_credits_range", "credits", 0, False),
    ("api_keys", "ck_api_keys_spend_cap_range", "spend_cap", 0, True),
    ("api_keys", "ck_api_keys_spent_range", "spent", -BOUND, False),
)


def _condition(column: str, lowest: int, nullable: bool, sqlite: bool) -> str:
    # PostgreSQL's BIGINT is an integer by type and raises on overflow; SQLite stores whatever it is
    # given (an overflowing sum becomes a REAL), so there the type is checked too.
    inside = f"{column} BETWEEN {lowest} AND {BOUND}"
    if sqlite:
        inside = f"typeof({column}) = 'integer' AND {inside}"
    return f"{column} IS NULL OR ({inside})" if nullable else inside


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    for table, _name, column, lowest, nullable in CHECKS:
        condition = _condition(column, lowest, nullable, sqlite)
        bad = bind.execute(sa.text(f"SELECT count(*) FROM {table} WHERE NOT ({condition})")).scalar_one()
        if bad:
            raise RuntimeError(
                f"migration 0007: {bad} row(s) of {table}.{column} are not integers within "
                f"[{lowest}, {BOUND}]; correct them (docs/decisions.md, 'Ranges') and start again"
            )
    tables: dict[str, list[tuple[str, str, int, bool]]] = {}
    for table, name, column, lowest, nullable in CHECKS:
        tables.setdefault(table, []).append((name, column, lowest, nullable))
    for table, checks in tables.items():
        with op.batch_alter_table(table) as batch:
            for name, column, lowest, nullable in checks:
                batch.create_check_constraint(name, _condition(column, lowest, nullable, sqlite))

    # A signed-out console session id, until the cookie would have expired anyway.
    op.create_table(
        "console_signouts",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_console_signouts")),
    )
    op.create_index(op.f("ix_console_signouts_expires_at"), "console_signouts", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_console_signouts_expires_at"), table_name="console_signouts")
    op.drop_table("console_signouts")
    tables: dict[str, list[str]] = {}
    for table, name, _column, _lowest, _nullable in CHECKS:
        tables.setdefault(table, []).append(name)
    for table, names in tables.items():
        with op.batch_alter_table(table) as batch:
            for name in names:
                batch.drop_constraint(name, type_="check")
