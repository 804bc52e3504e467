"""The price list: credits per model, resolution, duration and action; '*' matches anything."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.domain.requests import WILDCARD as WILDCARD  # defined with the price key
from dreamrelay.store.direct import Reads, Sql
from dreamrelay.store.schema import prices

# The rules that match (each field exact or '*'); the most specific of them is picked below.
_PRICE_RULES = Sql.of(
    "SELECT model, resolution, duration, action, credits FROM prices"
    " WHERE model IN (?, ?) AND resolution IN (?, ?) AND duration IN (?, ?) AND action IN (?, ?)"
)


async def price_for(tx: Reads, *, model: str, resolution: str, duration: str, action: str) -> int | None:
    """The most specific matching rule's credits, or None.

    Exact beats '*' field by field, and the fields rank action > model > resolution > duration: a
    rule for this action (an upscale of any model) beats a rule for any action of this model (what
    generating a video of it costs)."""
    rows = await tx.rows(
        _PRICE_RULES, model, WILDCARD, resolution, WILDCARD, duration, WILDCARD, action, WILDCARD
    )
    best: tuple[int, int] | None = None
    for rule_model, rule_resolution, rule_duration, rule_action, credits in rows:
        exact = (rule_action, rule_model, rule_resolution, rule_duration)
        score = sum(8 >> rank for rank, value in enumerate(exact) if value != WILDCARD)
        if best is None or score > best[0]:
            best = (score, int(credits))
    return best[1] if best else None


async def list_prices(conn: AsyncConnection) -> list[dict[str, object]]:
    query = select(prices.c.model, prices.c.resolution, prices.c.duration, prices.c.action, prices.c.credits)
    return [dict(r._mapping) for r in await conn.execute(query.order_by(prices.c.model, prices.c.id))]


async def set_price(
    conn: AsyncConnection,
    *,
    model: str,
    resolution: str,
    duration: str,
    action: str,
    credits: int,
    postgres: bool,
) -> None:
    values = {
        "model": model,
        "resolution": resolution,
        "duration": duration,
        "action": action,
        "credits": credits,
    }
    statement = (pg_insert if postgres else sqlite_insert)(prices).values(**values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["model", "resolution", "duration", "action"], set_={"credits": credits}
        )
    )


async def remove_price(
    conn: AsyncConnection, *, model: str, resolution: str, duration: str, action: str
) -> bool:
    result = await conn.execute(
        delete(prices).where(
            prices.c.model == model,
            prices.c.resolution == resolution,
            prices.c.duration == duration,
            prices.c.action == action,
        )
    )
    return result.rowcount > 0
