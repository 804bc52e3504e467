"""The price list: credits per model, resolution, duration and action (per task or per million tokens);
'*' matches anything."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.domain.pricing import PER_TASK, Price, PriceRule, most_specific
from dreamrelay.domain.requests import WILDCARD as WILDCARD  # defined with the price key
from dreamrelay.store.direct import Reads, Sql
from dreamrelay.store.schema import prices

# The rules that match (each field exact or '*'); domain/pricing.py picks the most specific of them.
_PRICE_RULES = Sql.of(
    "SELECT model, resolution, duration, action, credits, unit FROM prices"
    " WHERE model IN (?, ?) AND resolution IN (?, ?) AND duration IN (?, ?) AND action IN (?, ?)"
)


async def price_for(tx: Reads, *, model: str, resolution: str, duration: str, action: str) -> Price | None:
    """The price of the most specific matching rule (`domain/pricing.py`), or None."""
    rows = await tx.rows(
        _PRICE_RULES, model, WILDCARD, resolution, WILDCARD, duration, WILDCARD, action, WILDCARD
    )
    return most_specific(PriceRule(m, r, d, a, int(credits), unit) for m, r, d, a, credits, unit in rows)


async def list_prices(conn: AsyncConnection) -> list[tuple[str, str, str, str, int, str]]:
    """(model, resolution, duration, action, credits, unit) per rule."""
    c = prices.c
    query = select(c.model, c.resolution, c.duration, c.action, c.credits, c.unit)
    rows = await conn.execute(query.order_by(c.model, c.id))
    return [(r.model, r.resolution, r.duration, r.action, r.credits, r.unit) for r in rows]


async def set_price(
    conn: AsyncConnection,
    *,
    model: str,
    resolution: str,
    duration: str,
    action: str,
    credits: int,
    postgres: bool,
    unit: str = PER_TASK,
) -> None:
    values = {
        "model": model,
        "resolution": resolution,
        "duration": duration,
        "action": action,
        "credits": credits,
        "unit": unit,
    }
    statement = (pg_insert if postgres else sqlite_insert)(prices).values(**values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["model", "resolution", "duration", "action"],
            set_={"credits": credits, "unit": unit},
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
