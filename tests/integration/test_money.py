"""Money: holds never overdraw, settlements happen exactly once, idempotent submits charge once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dreamrelay.domain.states import TaskState
from dreamrelay.runtime import Runtime
from dreamrelay.services import follow, lifecycle
from dreamrelay.settings import Settings
from dreamrelay.store import ledger
from dreamrelay.store import tasks as task_store
from dreamrelay.store.engine import on_connection
from dreamrelay.store.schema import accounts
from dreamrelay.store.schema import ledger as ledger_table
from tests.conftest import make_settings, start_relay
from tests.integration.test_luma_lifecycle import wait_for

pytestmark = pytest.mark.both_stores

PRICE_720P_5S = 100  # ray-v2 default price list


def balance_and_ledger(settings: Settings, account: str) -> tuple[int, list[dict[str, Any]]]:
    async def read() -> tuple[int, list[dict[str, Any]]]:
        async with Runtime.from_settings(settings) as rt, rt.db.reader() as conn:
            row = (await conn.execute(select(accounts).where(accounts.c.name == account))).one()
            rows = await conn.execute(
                select(ledger_table).where(ledger_table.c.account_id == row.id).order_by(ledger_table.c.id)
            )
            return int(row.balance), [dict(r._mapping) for r in rows]

    return asyncio.run(read())


def test_fifty_concurrent_submits_against_seven_tasks_of_balance(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sandbox_queued_seconds=30)
    with start_relay(settings) as relay:
        key = relay.new_key("seven", balance=7 * PRICE_720P_5S)

        async def storm() -> list[httpx.Response]:
            async with httpx.AsyncClient(
                base_url=relay.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
            ) as client:
                return await asyncio.gather(
                    *(client.post("/luma/generations", json={"user_prompt": f"n{i}"}) for i in range(50))
                )

        responses = asyncio.run(storm())
        codes = sorted(r.status_code for r in responses)
        assert codes.count(200) == 7 and codes.count(402) == 43, codes
        assert all(
            r.json()["error"]["code"] == "insufficient_balance" for r in responses if r.status_code == 402
        )
        balance, rows = balance_and_ledger(settings, "seven")
        assert balance == 0
        assert sum(r["amount"] for r in rows) == balance
        assert [r["kind"] for r in rows].count("hold") == 7
        assert all(r["amount"] == -PRICE_720P_5S for r in rows if r["kind"] == "hold")


def test_completed_is_captured_and_failed_is_released(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with start_relay(settings) as relay:
        key = relay.new_key("payer", balance=1000)
        with relay.client(key) as client:
            good = client.post("/luma/generations", json={"user_prompt": "ok", "resolution": "540p"}).json()
            bad = client.post(
                "/luma/generations", json={"user_prompt": "[sandbox:fail]", "resolution": "540p"}
            ).json()
            assert wait_for(client, good["id"], {"completed", "failed"})["state"] == "completed"
            assert wait_for(client, bad["id"], {"completed", "failed"})["state"] == "failed"
            refused = client.post(
                "/luma/generations", json={"user_prompt": "[sandbox:reject]", "resolution": "540p"}
            )
            assert refused.status_code == 400
        balance, rows = balance_and_ledger(settings, "payer")
        price = 50  # ray-v2 540p 5s
        by_task: dict[str, list[str]] = {}
        for row in rows:
            by_task.setdefault(row["task_id"], []).append(row["kind"])
        assert by_task[good["id"]] == ["hold", "capture"]
        assert by_task[bad["id"]] == ["hold", "release"]
        refused_rows = [
            kinds for task_id, kinds in by_task.items() if task_id not in (good["id"], bad["id"], None)
        ]
        assert refused_rows == [["hold", "release"]]  # upstream refusal at submit: held, then given back
        assert balance == 1000 - price
        assert sum(r["amount"] for r in rows) == balance


def test_a_terminal_update_applied_twice_or_by_two_workers_settles_once(tmp_path: Path) -> None:
    # No worker: the test plays the workers itself.
    settings = make_settings(tmp_path, worker_enabled=False)
    with start_relay(settings) as relay:
        key = relay.new_key("racer", balance=1000)
        with relay.client(key) as client:
            ids = [
                client.post(
                    "/luma/generations", json={"user_prompt": f"r{i} [sandbox:stall]", "resolution": "540p"}
                ).json()["id"]
                for i in range(2)
            ]
            # The sandbox's "dreaming" callback has landed (the task is processing, the row's version moved);
            # upstream never finishes. Waiting for it, not a fixed time, keeps a busy machine from racing it.
            for task_id in ids:
                wait_for(client, task_id, {"processing"})

        async def race() -> tuple[Sequence[Any], Sequence[Any], Sequence[Any]]:
            async with Runtime.from_settings(settings) as rt:
                async with rt.db.transaction() as conn:
                    leased = await task_store.lease_due(
                        conn,
                        owner="worker-a",
                        now=time.time() + 60,  # past the (rare, callback-backed) safety poll
                        limit=10,
                        lease_seconds=60,
                        skip_locked=not rt.db.is_sqlite,
                    )
                assert sorted(t.id for t in leased) == sorted(ids)
                fail_task, done_task = sorted(leased, key=lambda t: ids.index(t.id))
                # The same failure applied twice at once by the lease holder, and once by a stale worker.
                failed = await asyncio.gather(
                    follow.fail(rt, fail_task, "worker-a", "boom"),
                    follow.fail(rt, fail_task, "worker-a", "boom"),
                    follow.fail(rt, fail_task, "worker-b", "boom"),
                )
                completed = []
                media = {
                    "completed_at": time.time(),
                    "video": {"key": "k", "width": 1, "height": 1, "duration": 1.0},
                    "thumbnail": {"key": "t", "width": 1, "height": 1, "palette": ""},
                    "last_frame": {"key": "l", "width": 1, "height": 1},
                }
                for _ in range(2):
                    completed.append(
                        await lifecycle.transition(
                            rt,
                            done_task,
                            lifecycle.Change(state=TaskState.COMPLETED, media=media),
                            lease_owner="worker-a",
                        )
                    )
                # Even a writer that skips the version check cannot settle twice: the database refuses.
                for settled in (fail_task, done_task):
                    with pytest.raises(IntegrityError):
                        async with rt.db.transaction() as conn:
                            await ledger.release(
                                on_connection(conn),
                                account_id=settled.account_id,
                                key_id=settled.api_key_id,
                                task_id=settled.id,
                                amount=settled.price,
                            )
                return failed, completed, leased

        failed, completed, _ = asyncio.run(race())
        assert sum(r is not None for r in failed) == 1
        assert sum(r is not None for r in completed) == 1
        balance, rows = balance_and_ledger(settings, "racer")
        kinds = [(r["task_id"], r["kind"]) for r in rows if r["task_id"]]
        assert kinds.count((ids[0], "release")) == 1
        assert kinds.count((ids[1], "capture")) == 1
        assert (ids[1], "release") not in kinds
        assert balance == 1000 - 50
        assert sum(r["amount"] for r in rows) == balance


def test_idempotent_submits_charge_once(relay_with_funds: tuple[Any, str]) -> None:
    relay, key = relay_with_funds
    body = {"user_prompt": "same thing", "resolution": "540p"}
    with relay.client(key) as client:
        first = client.post("/luma/generations", json=body, headers={"Idempotency-Key": "order-1"})
        again = client.post("/luma/generations", json=body, headers={"Idempotency-Key": "order-1"})
        assert first.status_code == again.status_code == 200
        assert first.json()["id"] == again.json()["id"]
        other = client.post(
            "/luma/generations",
            json={**body, "user_prompt": "different"},
            headers={"Idempotency-Key": "order-1"},
        )
        assert other.status_code == 409
        assert other.json()["error"]["code"] == "idempotency_key_reused"

    async def replays() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=relay.url,
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "order-2"},
            timeout=60,
        ) as c:
            return await asyncio.gather(*(c.post("/luma/generations", json=body) for _ in range(10)))

    results = asyncio.run(replays())
    assert {r.status_code for r in results} == {200}
    assert len({r.json()["id"] for r in results}) == 1
    _balance, rows = balance_and_ledger(relay.settings, "idem")
    assert [r["kind"] for r in rows].count("hold") == 2  # order-1 once, order-2 once


@pytest.fixture
def relay_with_funds(tmp_path: Path) -> Any:
    with start_relay(make_settings(tmp_path)) as relay:
        yield relay, relay.new_key("idem", balance=10_000)


def test_ledger_verify_cli_agrees(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with start_relay(settings) as relay, relay.client() as client:
        task = client.post("/luma/generations", json={"user_prompt": "v", "resolution": "540p"}).json()
        wait_for(client, task["id"], {"completed"})

    async def check() -> tuple[int, list[ledger.Mismatch]]:
        async with Runtime.from_settings(settings) as rt, rt.db.reader() as conn:
            return await ledger.verify(conn)

    checked, mismatches = asyncio.run(check())
    assert checked == 1 and mismatches == []
