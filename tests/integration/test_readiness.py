"""/readyz while the database refuses connections: a clear 503 in our words (no driver class name),
the detail in the operator's log, and ready again once the database is back, without a restart."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import make_settings, start_relay
from tests.support.services import _admin


def test_readyz_says_unavailable_in_our_words(
    tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    database = make_url(pg_url).database
    with start_relay(make_settings(tmp_path, database_url=pg_url)) as relay:
        assert httpx.get(f"{relay.url}/readyz").json() == {"status": "ready"}
        # No new connection is allowed, and every open one is cut: the pool's connections are dead.
        asyncio.run(_admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
        asyncio.run(
            _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
        )
        try:
            with caplog.at_level(logging.WARNING, logger="dreamrelay.http.routes.ops"):
                down = httpx.get(f"{relay.url}/readyz", timeout=30)
        finally:
            asyncio.run(_admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        assert down.status_code == 503
        assert down.json() == {"status": "unavailable", "reason": "the database does not answer"}
        assert "Error" not in down.text and "asyncpg" not in down.text
        logged = [r.getMessage() for r in caplog.records if r.name == "dreamrelay.http.routes.ops"]
        assert len(logged) == 1 and "Error" in logged[0]  # the class and its text: for the operator
        assert httpx.get(f"{relay.url}/readyz", timeout=30).json() == {"status": "ready"}
