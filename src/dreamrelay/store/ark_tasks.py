"""An account's Ark tasks (the /api/v3 family) as Ark lists them: newest first, filtered by Ark's status
word (formats/ark.py::status_of: a failed task was `cancelled` or `expired` when its failure code or the
upstream's word says so), model and ids, a page of stored bodies and the total."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.domain.api_format import Listing
from dreamrelay.domain.states import TaskState
from dreamrelay.store.schema import tasks
from dreamrelay.store.tasks import listed

_CANCELLED = or_(tasks.c.failure_code == "cancelled", tasks.c.upstream_state == "cancelled")
_EXPIRED = and_(tasks.c.upstream_state == "expired", not_(_CANCELLED))
_FAILED = tasks.c.state == TaskState.FAILED.value


def _status(status: str) -> ColumnElement[bool]:
    words: dict[str, ColumnElement[bool]] = {
        "queued": tasks.c.state == TaskState.PENDING.value,
        "running": tasks.c.state == TaskState.PROCESSING.value,
        "succeeded": tasks.c.state == TaskState.COMPLETED.value,
        "cancelled": and_(_FAILED, _CANCELLED),
        "expired": and_(_FAILED, _EXPIRED),
        "failed": and_(
            _FAILED,
            func.coalesce(tasks.c.failure_code, "") != "cancelled",
            func.coalesce(tasks.c.upstream_state, "").not_in(("cancelled", "expired")),
        ),
    }
    return words[status]


async def page(
    conn: AsyncConnection,
    account_id: int,
    listing: Listing,
    *,
    status: str | None,
    model: str | None,
    task_ids: Sequence[str],
    limit: int,
    offset: int,
) -> tuple[int, list[bytes]]:
    """(how many match, the stored bodies of one page)."""
    conditions = [
        tasks.c.account_id == account_id,
        *listed(listing),
        tasks.c.deleted_at.is_(None),
    ]
    if status is not None:
        conditions.append(_status(status))
    if model is not None:
        conditions.append(tasks.c.model == model)
    if task_ids:
        conditions.append(tasks.c.id.in_(task_ids))
    total = (await conn.execute(select(func.count()).select_from(tasks).where(*conditions))).scalar_one()
    query = (
        select(tasks.c.body)
        .where(*conditions)
        .order_by(tasks.c.created_at.desc(), tasks.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return int(total), [bytes(row.body) for row in await conn.execute(query)]
