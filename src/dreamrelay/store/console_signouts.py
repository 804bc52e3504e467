"""Signed-out console sessions: the cookie is signed, so only the store can say it no longer counts.

A row lives until the newest cookie of that session would have expired anyway, then it is swept.
"""

from __future__ import annotations

import time

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dreamrelay.store.schema import console_signouts


async def sign_out(conn: AsyncConnection, sid: str, until: float) -> None:
    """Record `sid` as signed out until `until`; sweep the rows that have served their time."""
    await conn.execute(delete(console_signouts).where(console_signouts.c.expires_at < time.time()))
    try:
        async with conn.begin_nested():
            await conn.execute(insert(console_signouts).values(sid=sid, expires_at=until))
    except IntegrityError:
        pass  # signed out twice (two tabs): the first row stands


async def is_signed_out(conn: AsyncConnection, sid: str) -> bool:
    found = await conn.execute(select(console_signouts.c.sid).where(console_signouts.c.sid == sid))
    return found.first() is not None
