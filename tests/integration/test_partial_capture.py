"""Billing by what was used: a completed task's capture may be less than its hold, and the rest goes
back in the same settlement. However settlements race (a poll and a callback, two workers), a task is
settled exactly once: hold ≥ capture, release = hold − capture, and the ledger sums to the balance."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from dreamrelay.domain.states import settled
from dreamrelay.runtime import Runtime
from dreamrelay.store import ledger
from dreamrelay.store import tasks as task_store
from dreamrelay.store.engine import on_connection
from tests.conftest import make_settings, start_relay
from tests.integration.test_money import balance_and_ledger

pytestmark = pytest.mark.both_stores

PRICE_540P_5S = 50  # ray-v2 default price list


def test_the_split_rule() -> None:
    assert settled(100, None) == (100, 0)
    assert settled(100, 37) == (37, 63)
    assert settled(100, 250) == (100, 0)  # never more than the hold
    assert settled(100, -5) == (0, 100)
    assert settled(0, 10) == (0, 0)


@pytest.mark.parametrize("charges", [(30, 20), (0, 50), (50, 30)])
def test_racing_partial_captures_and_a_release_settle_once(tmp_path: Path, charges: tuple[int, int]) -> None:
    settings = make_settings(tmp_path, worker_enabled=False)
    with start_relay(settings) as relay:
        key = relay.new_key("racer", balance=1000)
        with relay.client(key) as client:
            answer = client.post(
                "/luma/generations", json={"user_prompt": "r [sandbox:stall]", "resolution": "540p"}
            )
            assert answer.status_code in (200, 201), answer.text
            task_id = answer.json()["id"]

        async def race() -> tuple[list[Any], int]:
            async with Runtime.from_settings(settings) as rt:
                async with rt.db.reader() as conn:
                    task = await task_store.get_task(conn, task_id)
                assert task is not None and task.price == PRICE_540P_5S

                async def capture(charge: int) -> str:
                    async with rt.db.transaction() as conn:
                        await ledger.capture(
                            on_connection(conn),
                            account_id=task.account_id,
                            key_id=task.api_key_id,
                            task_id=task.id,
                            amount=task.price,
                            charge=charge,
                        )
                    return f"captured {charge}"

                async def release() -> str:
                    async with rt.db.transaction() as conn:
                        await ledger.release(
                            on_connection(conn),
                            account_id=task.account_id,
                            key_id=task.api_key_id,
                            task_id=task.id,
                            amount=task.price,
                        )
                    return "released"

                outcomes = await asyncio.gather(
                    capture(charges[0]), capture(charges[1]), release(), return_exceptions=True
                )
                async with rt.db.reader() as conn:
                    checked, mismatches = await ledger.verify(conn)
                    earned = await ledger.captured(conn)
                assert checked >= 1 and mismatches == []
                return list(outcomes), earned

        outcomes, earned = asyncio.run(race())
        won = [o for o in outcomes if isinstance(o, str)]
        assert len(won) == 1, outcomes
        assert all(isinstance(o, IntegrityError) for o in outcomes if not isinstance(o, str))
        balance, rows = balance_and_ledger(settings, "racer")
        mine = {r["kind"]: r for r in rows if r["task_id"] == task_id}
        hold = -mine["hold"]["amount"]
        assert hold == PRICE_540P_5S
        if won[0] == "released":
            assert set(mine) == {"hold", "release"} and mine["release"]["amount"] == hold
            captured = 0
        else:
            captured = int(won[0].split()[1])
            assert "capture" in mine and mine["capture"]["amount"] == 0
            assert hold >= captured
            released = mine["release"]["amount"] if "release" in mine else 0
            assert released == hold - captured
            assert mine.get("release", {}).get("settles") is None
            assert earned == captured
        assert balance == 1000 - captured
        assert sum(r["amount"] for r in rows) == balance
