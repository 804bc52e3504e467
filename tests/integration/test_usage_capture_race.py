"""A Seedance task billed by use, completed by a poll and an upstream callback at once (two processes'
runtimes): one of them settles it, exactly once — the capture is what `usage.completion_tokens` cost at
the task's rate, hold ≥ capture, release = hold − capture, the task keeps its usage and charge, and
`ledger verify` holds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from dreamrelay.domain.catalog import token_charge
from dreamrelay.runtime import Runtime
from dreamrelay.services import follow
from dreamrelay.store import channels as channel_store
from dreamrelay.store import ledger
from dreamrelay.store import tasks as task_store
from dreamrelay.store.schema import tasks
from tests.conftest import make_settings, start_relay
from tests.integration.test_money import balance_and_ledger

pytestmark = pytest.mark.both_stores

MODEL = "doubao-seedance-1-0-pro-250528"
IN_FLIGHT_BOUND_SECONDS = 1.0  # inflight.py: InFlightMirror.bound
RATE = 100_000  # the operator's rule for MODEL (credits per million tokens): a few tokens show


def test_a_poll_and_a_callback_racing_settle_the_usage_once(tmp_path: Path) -> None:
    # No worker and no upstream callbacks into the relay itself: the two racers below are the only ones.
    settings = make_settings(tmp_path, worker_enabled=False, upstream_callbacks=False)
    with start_relay(settings) as relay:
        key = relay.new_key("racer", balance=10_000)
        with relay.admin() as admin:
            rule = {"model": MODEL, "action": "generate", "credits": RATE, "unit": "1m_tokens"}
            assert admin.put("/admin/prices", json=rule).status_code == 200
        with relay.client(key) as client:
            answer = client.post(
                "/api/v3/contents/generations/tasks",
                json={
                    "model": MODEL,
                    "content": [{"type": "text", "text": "race --rs 480p --dur 2 --rt 21:9"}],
                },
            )
            assert answer.status_code == 200, answer.text
            task_id = answer.json()["id"]

        async def race() -> tuple[int, int | None, int | None, list[object]]:
            async with Runtime.from_settings(settings) as poller, Runtime.from_settings(settings) as receiver:
                async with poller.db.reader() as conn:
                    task = await task_store.get_task(conn, task_id)
                    assert task is not None and task.channel_id is not None and task.token_rate == RATE
                    channel = await channel_store.get_channel(conn, task.channel_id)
                assert channel is not None and task.upstream_id is not None
                upstream = poller.upstream_for(channel, capability=task.capability)
                for _ in range(600):  # the sandbox renders it (nobody follows it: no worker)
                    status = (await upstream.poll([task.upstream_id]))[task.upstream_id]
                    if status.state.is_terminal:
                        break
                    await asyncio.sleep(0.1)
                assert status.usage_tokens is not None and status.usage_tokens > 0
                async with poller.db.transaction() as conn:
                    await conn.execute(tasks.update().where(tasks.c.id == task_id).values(next_poll_at=0))
                    leased = await task_store.lease_due(
                        conn, owner="poller", now=time.time(), limit=10, lease_seconds=60, skip_locked=False
                    )
                mine = next(t for t in leased if t.id == task_id)
                outcomes = await asyncio.gather(
                    follow.apply_status(poller, mine, status, "poller"),
                    follow.apply_status(receiver, mine, status, None),
                    return_exceptions=True,
                )
                async with poller.db.reader() as conn:
                    done = await task_store.get_task(conn, task_id)
                    checked, mismatches = await ledger.verify(conn)
                assert done is not None and checked >= 1 and mismatches == []
                return status.usage_tokens, done.usage_tokens, done.charged, list(outcomes)

        tokens, kept_tokens, charged, outcomes = asyncio.run(race())
        assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
        assert sum(1 for o in outcomes if o is not None) == 1, (outcomes, kept_tokens, charged)
        expected = token_charge(tokens, RATE)
        assert kept_tokens == tokens and charged == expected
        balance, rows = balance_and_ledger(settings, "racer")
        mine = [r for r in rows if r["task_id"] == task_id]
        kinds = sorted(r["kind"] for r in mine)
        assert kinds == ["capture", "hold", "release"]  # one of each: settled exactly once
        hold = -next(r["amount"] for r in mine if r["kind"] == "hold")
        release = next(r["amount"] for r in mine if r["kind"] == "release")
        assert hold >= expected and release == hold - expected > 0
        assert balance == 10_000 - expected == sum(r["amount"] for r in rows)
        # The relay's process learns of the other runtimes' write through its in-flight mirror's change
        # feed: within the mirror's documented bound (1 s; inflight.py), so the read is retried that long.
        with relay.client(key) as client:
            deadline = time.monotonic() + 3 * IN_FLIGHT_BOUND_SECONDS
            while True:
                shown = client.get(f"/api/v3/contents/generations/tasks/{task_id}").json()
                if shown["status"] == "succeeded" or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        assert shown["status"] == "succeeded", shown
        assert shown["usage"]["completion_tokens"] == tokens
        assert shown["credits"] == {"held": hold, "charged": expected}


def test_an_ark_callback_alone_completes_the_task(tmp_path: Path) -> None:
    """No worker polls it: the sandbox's Ark callbacks (the kind's `reports`) move it to succeeded."""
    settings = make_settings(tmp_path, worker_enabled=False, allow_private_urls="127.0.0.0/8")
    with start_relay(settings) as relay, relay.client() as client:
        body = {"model": MODEL, "content": [{"type": "text", "text": "called back --rs 480p --dur 2"}]}
        task_id = client.post("/seedance/v3/contents/generations/tasks", json=body).json()["id"]
        for _ in range(600):
            shown = client.get(f"/seedance/v3/contents/generations/tasks/{task_id}").json()
            if shown["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
        assert shown["status"] == "succeeded", shown
        assert shown["usage"]["completion_tokens"] > 0
