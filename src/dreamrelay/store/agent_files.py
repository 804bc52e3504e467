"""Files customers upload through the Agents API's Files API (table agent_files)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.domain.agent_file import AgentFile
from dreamrelay.store.schema import agent_files


async def insert_file(conn: AsyncConnection, file: AgentFile) -> None:
    await conn.execute(insert(agent_files).values(**asdict(file)))


async def get_file(conn: AsyncConnection, file_id: str, account_id: int) -> AgentFile | None:
    """The account's file (deleted ones too: GET shows them as deleted); None for others' ids."""
    row = (
        await conn.execute(
            select(agent_files).where(agent_files.c.id == file_id, agent_files.c.account_id == account_id)
        )
    ).one_or_none()
    return AgentFile(**row._mapping) if row else None


async def get_any(conn: AsyncConnection, file_id: str) -> AgentFile | None:
    """A file whoever owns it (to decide whether its bytes may be served)."""
    row = (await conn.execute(select(agent_files).where(agent_files.c.id == file_id))).one_or_none()
    return AgentFile(**row._mapping) if row else None


async def get_pending(conn: AsyncConnection, file_id: str) -> AgentFile | None:
    """A file still waiting for its presigned upload, whoever owns it (the PUT has no API key)."""
    query = select(agent_files).where(agent_files.c.id == file_id, agent_files.c.state == "pending")
    row = (await conn.execute(query)).one_or_none()
    return AgentFile(**row._mapping) if row else None


async def update_file(
    conn: AsyncConnection, file_id: str, expected_state: str, values: dict[str, Any]
) -> bool:
    """Change the file if it is still in `expected_state` (one writer wins a race)."""
    result = await conn.execute(
        update(agent_files)
        .where(agent_files.c.id == file_id, agent_files.c.state == expected_state)
        .values(**values)
    )
    return result.rowcount == 1


async def list_files(
    conn: AsyncConnection,
    account_id: int,
    *,
    limit: int,
    after: tuple[float, str] | None,
    purpose: str | None,
    state: str | None,
) -> list[AgentFile]:
    """Newest first; `after` is the (created_at, id) of the last file of the previous page. Deleted
    files only when asked for by state. One row more than `limit` tells whether more follow."""
    query = select(agent_files).where(agent_files.c.account_id == account_id)
    if state is not None:
        query = query.where(agent_files.c.state == state)
    else:
        query = query.where(agent_files.c.state != "deleted")
    if purpose is not None:
        query = query.where(agent_files.c.purpose == purpose)
    if after is not None:
        created, file_id = after
        query = query.where(
            or_(
                agent_files.c.created_at < created,
                and_(agent_files.c.created_at == created, agent_files.c.id < file_id),
            )
        )
    query = query.order_by(agent_files.c.created_at.desc(), agent_files.c.id.desc()).limit(limit + 1)
    return [AgentFile(**r._mapping) for r in await conn.execute(query)]
