"""Console sessions ended on the server: a signed-out session stays out in every process."""

from __future__ import annotations

from dreamrelay.store import console_signouts
from dreamrelay.store.engine import Database


async def is_signed_out(db: Database, sid: str) -> bool:
    async with db.reader() as conn:
        return await console_signouts.is_signed_out(conn, sid)


async def sign_out(db: Database, sid: str, until: float) -> None:
    """Remember `sid` as signed out until its cookie would have expired anyway."""
    async with db.transaction() as conn:
        await console_signouts.sign_out(conn, sid, until)
