"""default prices of the rest of the Dream Machine API: Photon images, image reframe, upscale,
add audio, video reframe and modify

Revision ID: 0009
Revises: 0012
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0012"
branch_labels = None
depends_on = None

ACTIONS = ("generate_image", "reframe_image", "upscale_video", "add_audio", "reframe_video", "modify_video")


def default_prices() -> list[dict[str, Any]]:
    """Credits per task; operators change them with `dreamrelay prices` or the admin API. The video
    generation prices for comparison: ray-v2 720p 5 s = 100, ray-flash-2 720p 5 s = 40."""

    def row(model: str, resolution: str, duration: str, action: str, credits: int) -> dict[str, Any]:
        return {
            "model": model,
            "resolution": resolution,
            "duration": duration,
            "action": action,
            "credits": credits,
        }

    rows = [
        row("photon-1", "*", "*", "generate_image", 8),
        row("photon-flash-1", "*", "*", "generate_image", 2),
        row("photon-1", "*", "*", "reframe_image", 12),
        row("photon-flash-1", "*", "*", "reframe_image", 4),
    ]
    lengths = {"5s": 1.0, "9s": 1.8, "10s": 2.0}
    # Upscale: by the resolution it reaches and the clip's length (any model).
    for resolution, base in (("540p", 10), ("720p", 20), ("1080p", 40), ("4k", 80)):
        rows += [row("*", resolution, d, "upscale_video", int(base * f)) for d, f in lengths.items()]
    # Audio: by length only.
    rows += [row("*", "*", d, "add_audio", int(10 * f)) for d, f in lengths.items()]
    # Reframe and modify: by model and the source's length (5 s, 10 s or up to 30 s).
    for action in ("reframe_video", "modify_video"):
        for model, base in (("ray-v2", 60), ("ray-flash-2", 25)):
            rows += [row(model, "*", d, action, base * f) for d, f in (("5s", 1), ("10s", 2), ("30s", 6))]
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
    names = ", ".join(f"'{a}'" for a in ACTIONS)
    op.execute(sa.text(f"DELETE FROM prices WHERE action IN ({names})"))
