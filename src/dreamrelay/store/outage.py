"""The database being unreachable, as opposed to a bug: recognising it, and pacing a loop through it.

An outage is PostgreSQL restarting or gone (connection refused or reset, "the database system is
shutting down / starting up", a pooled connection found closed, too many connections, the pool's
checkout timing out) or SQLite's write lock held by another process past the busy timeout. Whatever
layer raised it (asyncpg through store/direct.py, SQLAlchemy wrapping asyncpg or sqlite3), the cause
chain names one of these. The API answers such a request 503 `database_unavailable`
(`http/errors.py::unexpected`); every background loop waits with `Outage` and carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from sqlalchemy import exc as sa

log = logging.getLogger(__name__)
T = TypeVar("T")

_POSTGRES = (
    asyncpg.PostgresConnectionError,  # class 08: connection failures, "connection does not exist"
    asyncpg.CannotConnectNowError,  # starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,  # a fast shutdown cut the session
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,  # the pooled connection is closed, or was left mid-operation by a cut
    asyncpg.exceptions.InternalClientError,  # its protocol state after a cut ("cannot switch to state")
)
_SQLITE_BUSY = ("database is locked", "database is busy")
FIRST_WAIT_SECONDS = 0.5
LONGEST_WAIT_SECONDS = 10.0


# A builtin socket error is the database's when the driver's own I/O raised it: the innermost frame of
# its traceback outside the event loop's plumbing is a driver's. The same ConnectionRefusedError from an
# upstream, a callback receiver or object storage (aiohttp, obstore) is theirs, not an outage.
_DRIVERS = {"asyncpg", "sqlalchemy", "aiosqlite"}
_PLUMBING = {"asyncio", "socket", "ssl", "selectors", "uvloop", "contextlib"}


def _raised_by_driver(error: BaseException) -> bool:
    innermost = None
    frame = error.__traceback__
    while frame is not None:
        package = str(frame.tb_frame.f_globals.get("__name__", "")).partition(".")[0]
        if package not in _PLUMBING:
            innermost = package
        frame = frame.tb_next
    return innermost in _DRIVERS


def _one(error: BaseException) -> bool:
    if isinstance(error, _POSTGRES):
        return True
    if isinstance(error, ConnectionError) and _raised_by_driver(error):
        return True
    if isinstance(error, sa.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, (sa.TimeoutError, sa.PendingRollbackError)):
        # The pool had no connection to give in time; or a connection invalidated by a cut, asked to
        # run before its transaction was rolled back (SQLAlchemy's words for "the connection broke").
        return True
    if isinstance(error, sqlite3.OperationalError):
        return any(words in str(error) for words in _SQLITE_BUSY)
    return False


def is_outage(error: BaseException) -> bool:
    """Whether `error` (or anything in its cause chain) says the database is unreachable or locked."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if _one(current):
            return True
        pending += [current.__cause__, current.__context__, getattr(current, "orig", None)]
    return False


def described(error: BaseException) -> str:
    """One line for the log: the exception's class and first line, no traceback."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Outage:
    """Paces one background loop through a database outage: waits 0.5 s, doubling to 10 s, between
    tries; logs one warning when the outage starts and one line when the database answers again."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._since: float | None = None
        self._wait = FIRST_WAIT_SECONDS

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    @property
    def lasted(self) -> float:
        """Seconds since the outage began (0 when there is none)."""
        return 0.0 if self._since is None else time.monotonic() - self._since

    def note(self, error: BaseException) -> None:
        """A try failed: the first of an outage is logged."""
        if self._since is None:
            self._since = time.monotonic()
            log.warning("database unavailable, %s waits and retries: %s", self.what, described(error))

    async def wait(self, error: BaseException, stop: asyncio.Event | None = None) -> None:
        """After a failed try: `note` it and sleep the backoff, or until `stop` is set."""
        self.note(error)
        delay, self._wait = self._wait, min(self._wait * 2, LONGEST_WAIT_SECONDS)
        if stop is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)

    def over(self) -> None:
        """After a try that worked: log the recovery if there was an outage."""
        if self._since is not None:
            took = time.monotonic() - self._since
            log.warning("database available again, %s resumed after %.1f s", self.what, took)
        self._since = None
        self._wait = FIRST_WAIT_SECONDS


async def when_reachable(what: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """`attempt()`, tried again with `Outage`'s pacing for as long as the database is unreachable: a
    process that starts while PostgreSQL restarts waits for it instead of exiting. Any other error
    is raised at once (a wrong password, a bad URL's syntax)."""
    outage = Outage(what)
    while True:
        try:
            result = await attempt()
        except Exception as exc:
            if not is_outage(exc):
                raise
            await outage.wait(exc)
        else:
            outage.over()
            return result
