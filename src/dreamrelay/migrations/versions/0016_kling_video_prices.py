"""default prices of Kling video (text2video, image2video): per model, mode and length

Kling charges by mode and length, so its rules name the mode in the price list's `resolution` field
(`std`, `pro`) and the length in `duration` (`5s`, `10s`). A task holds the price of what it asked for and,
once finished, is charged the price of the clip it delivered (services/follow.py::used_charge).

Revision ID: 0016
Revises: 0014
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

MODELS = ("kling-v1", "kling-v1-5", "kling-v1-6", "kling-v2-master", "kling-v2-1", "kling-v2-1-master")


def default_prices() -> list[dict[str, Any]]:
    """Credits per task (ray-v2 720p 5 s = 100 for comparison); operators change them with `dreamrelay
    prices` or the admin API. The 1.x models: pro costs 3.5 times std; kling-v2-1: twice; the master
    models are one price for both modes. 10 s costs twice 5 s."""
    std_5s = {
        "kling-v1": (40, 140),
        "kling-v1-5": (40, 140),
        "kling-v1-6": (40, 140),
        "kling-v2-master": (200, 200),
        "kling-v2-1": (40, 80),
        "kling-v2-1-master": (200, 200),
    }
    rows = []
    for model, (std, pro) in std_5s.items():
        for mode, credits in (("std", std), ("pro", pro)):
            for duration, factor in (("5s", 1), ("10s", 2)):
                rows.append(
                    {
                        "model": model,
                        "resolution": mode,
                        "duration": duration,
                        "action": "*",
                        "credits": credits * factor,
                    }
                )
    return rows


def _table() -> sa.TableClause:
    return sa.table(
        "prices",
        sa.column("model", sa.String),
        sa.column("resolution", sa.String),
        sa.column("duration", sa.String),
        sa.column("action", sa.String),
        sa.column("credits", sa.BigInteger),
    )


def upgrade() -> None:
    op.bulk_insert(_table(), default_prices())


def downgrade() -> None:
    names = ", ".join(f"'{m}'" for m in MODELS)
    op.execute(sa.text(f"DELETE FROM prices WHERE model IN ({names})"))
