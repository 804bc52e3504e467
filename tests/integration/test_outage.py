"""What counts as the database being unreachable (503, the worker waits) rather than a bug (500)."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
from sqlalchemy import exc as sa

from dreamrelay.store.outage import is_outage


def _wrapped(error: Exception) -> Exception:
    """As SQLAlchemy raises a driver's error: a DBAPIError whose `orig` and cause are the driver's."""
    try:
        try:
            raise error
        except Exception as inner:
            raise sa.OperationalError("SELECT 1", {}, inner) from inner
    except sa.OperationalError as outer:
        return outer


def _raised_here(error: Exception) -> Exception:
    """`error` with a traceback (raised in this module, not in a database driver)."""
    try:
        raise error
    except Exception as caught:
        return caught


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("cannot call Transaction.__aexit__(): the underlying connection is closed"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        _wrapped(asyncpg.TooManyConnectionsError("sorry, too many clients already")),
        _wrapped(sqlite3.OperationalError("database is locked")),
        sa.PendingRollbackError("Can't reconnect until invalid transaction is rolled back"),
    ],
)
def test_outages(error: Exception) -> None:
    assert is_outage(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad"),
        KeyError("x"),
        _wrapped(sqlite3.OperationalError("no such table: tasks")),
        asyncpg.UniqueViolationError("duplicate key"),
        sa.IntegrityError("INSERT", {}, Exception("duplicate")),
        # A socket error no database driver raised (an upstream's, object storage's): not the database's.
        # tests/integration/test_outage_sources.py has the real ones, raised by real sockets.
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        _raised_here(ConnectionResetError(104, "Connection reset by peer")),
    ],
)
def test_bugs_are_not_outages(error: Exception) -> None:
    assert not is_outage(error)
