"""On PostgreSQL two task writes can commit in another order than they took their change markers. A write
that commits long after taking its marker (it waited for a lock; the machine was busy) is marked again
once it commits, so no other process's mirror keeps showing the task as it was. Seen in a fault run: after
a database restart, tasks the worker had finished stayed in flight in the API's reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import update

from dreamrelay.domain.states import TaskState
from dreamrelay.inflight import InFlightMirror
from dreamrelay.runtime import Runtime
from dreamrelay.services import lifecycle
from dreamrelay.settings import Settings
from dreamrelay.store import tasks as task_store
from dreamrelay.store.schema import api_keys
from tests.integration.test_inflight_reads import reader

LOOKBACK = 1.0  # the feed's window on PostgreSQL, shortened for the test (5 s in the product)


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_a_change_committed_long_after_its_marker_reaches_every_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    monkeypatch.setattr(task_store, "FEED_LOOKBACK_SECONDS", LOOKBACK)
    with reader(tmp_path) as (relay, _), relay.client() as client:
        ids = [client.post("/luma/generations", json={"user_prompt": "slow"}).json()["id"] for _ in range(2)]
    asyncio.run(_late_commit(relay.settings, *ids))


async def _late_commit(settings: Settings, first_id: str, second_id: str) -> None:
    async with (
        Runtime.from_settings(settings) as rt,  # the reading process: its mirror follows the feed
        Runtime.from_settings(settings) as writer,  # another process: the worker
        Runtime.from_settings(settings) as holder,  # whatever holds the key's row meanwhile
    ):
        mirror = InFlightMirror(10, lookback=LOOKBACK)
        await mirror.sync(rt.db)
        async with rt.db.reader() as conn:
            first, second = [await task_store.get_task(conn, i) for i in (first_id, second_id)]
        assert first is not None and second is not None
        mirror.keep(first)
        mirror.keep(second)
        account = first.account_id

        async with holder.db.transaction() as conn:
            await conn.execute(  # a row lock on the key: the move to failed waits for it after its marker
                update(api_keys)
                .where(api_keys.c.id == first.api_key_id)
                .values(in_flight=api_keys.c.in_flight)
            )
            change = lifecycle.Change(state=TaskState.FAILED, failure_reason="upstream gave up")
            failing = asyncio.create_task(lifecycle.transition(writer, first, change))
            await asyncio.sleep(0.3)
            assert not failing.done()  # it took its marker and waits for the key's row
            moved = await lifecycle.transition(writer, second, lifecycle.Change(state=TaskState.PROCESSING))
            assert moved is not None  # a later write, committed first (it took the same marker)
            await mirror.sync(rt.db)
            seen = mirror.get(second_id, account)
            assert seen is not None and seen.state is TaskState.PROCESSING
            await asyncio.sleep(LOOKBACK + 0.3)
            await mirror.sync(rt.db)  # its window has moved past the waiting write's marker
            held = mirror.get(first_id, account)
            assert held is not None and held.state is TaskState.PENDING
        failed = await failing  # the key's row is free: it commits, 1.6 s after taking its marker
        assert failed is not None and failed.state is TaskState.FAILED
        await mirror.sync(rt.db)
        assert mirror.get(first_id, account) is None  # finished: gone, never shown pending again
        async with rt.db.reader() as conn:
            assert (await task_store.get_task(conn, first_id)) == failed
