"""A process that starts while the database is away waits for it (`when_reachable`), and a real error
(not an outage) still ends it at once."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from dreamrelay.store import outage


def test_waits_out_an_outage_then_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outage, "FIRST_WAIT_SECONDS", 0.001)
    tries: list[int] = []

    async def attempt() -> str:
        tries.append(1)
        if len(tries) < 3:
            # (A bare ConnectionRefusedError raised here is no outage: no database driver raised it.)
            raise asyncpg.CannotConnectNowError("the database system is starting up")
        return "migrated"

    assert asyncio.run(outage.when_reachable("the start", attempt)) == "migrated"
    assert len(tries) == 3


def test_an_error_that_is_no_outage_is_raised_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outage, "FIRST_WAIT_SECONDS", 0.001)
    tries: list[int] = []

    async def attempt() -> None:
        tries.append(1)
        raise ValueError("password authentication failed")

    with pytest.raises(ValueError):
        asyncio.run(outage.when_reachable("the start", attempt))
    assert tries == [1]
