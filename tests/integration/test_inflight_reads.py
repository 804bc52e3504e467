"""In-flight tasks are read from each process's mirror (inflight.py), kept current by the one state
writer in this process and by the change feed across processes: a read shows a change another process
made once the bound has passed, never another account's task, and the same bytes the store holds."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from dreamrelay import inflight
from dreamrelay.domain.states import TaskState
from dreamrelay.formats import official
from dreamrelay.http.app import create_app
from dreamrelay.inflight import InFlightMirror
from dreamrelay.runtime import Runtime
from dreamrelay.services import lifecycle
from dreamrelay.settings import Settings
from dreamrelay.store import tasks as task_store
from tests.conftest import Relay, _prepare, make_settings
from tests.support.live_server import live_server
from tests.support.paths import REPO
from tests.support.templates import copy_migrated_sqlite

pytestmark = pytest.mark.both_stores


@contextmanager
def reader(tmp_path: Path) -> Iterator[tuple[Relay, Runtime]]:
    """A relay whose sandbox keeps every task queued and whose worker is off: tasks stay in flight
    until another process moves them."""
    settings = make_settings(tmp_path, sandbox_queued_seconds=3600.0, worker_enabled=False)
    if settings.database_url is None:
        copy_migrated_sqlite(settings.data_dir / "dreamrelay.db")
    key = asyncio.run(_prepare(settings))
    assert key is not None
    app = create_app(settings)
    with live_server(app, port=settings.port) as url:
        yield Relay(url=url, settings=settings, key=key), app.state.runtime


def write_elsewhere(settings: Settings, task_id: str, state: str, reason: str | None = None) -> None:
    """The one state writer, run in another OS process on the same store."""
    args = [
        str(settings.data_dir),
        settings.database_url or "",
        task_id,
        state,
        *([reason] if reason else []),
    ]
    subprocess.run([sys.executable, "-m", "tests.support.task_writer", *args], cwd=REPO, check=True)


def after_the_bound(settings: Settings) -> None:
    """Wait out the staleness bound: every read from now on must show what committed before."""
    time.sleep(settings.inflight_bound_seconds + settings.inflight_feed_seconds)


async def stored(settings: Settings, task_id: str) -> Any:
    async with Runtime.from_settings(settings) as rt, rt.db.reader() as conn:
        return await task_store.get_task(conn, task_id)


def test_a_change_made_by_another_process_shows_within_the_bound(tmp_path: Path) -> None:
    with reader(tmp_path) as (relay, rt), relay.client() as client:
        settings = relay.settings
        task_id = client.post("/luma/generations", json={"user_prompt": "slow"}).json()["id"]
        ids = [task_id]
        assert client.get(f"/luma/generations/{task_id}").json()["state"] == "pending"
        assert task_id in rt.inflight._tasks  # mirrored

        for state, reason in (("processing", None), ("failed", "upstream gave up")):
            write_elsewhere(settings, task_id, state, reason)
            after_the_bound(settings)
            task = asyncio.run(stored(settings, task_id))
            own = client.get(f"/luma/generations/{task_id}")
            assert own.status_code == 200
            assert own.content == task.body
            assert own.json()["state"] == state
            assert client.post("/luma/tasks", json={"ids": ids}).content == b"[" + task.body + b"]"
            dm = client.get(f"/dream-machine/v1/generations/{task_id}")
            assert dm.content == official.encode_generation(task, rt.media_base_url)
        assert task_id not in rt.inflight._tasks  # finished: the body cache's now


def test_the_mirror_answers_only_within_the_bound_and_follows_the_feed(tmp_path: Path) -> None:
    """The mechanism, step by step: a reader's mirror and a writer, each with its own connections to the
    store. The mirror shows the task it holds until its next feed read, then the change; another account
    nothing; and nothing once its last feed read is older than the bound (reads then go to the store)."""
    with reader(tmp_path) as (relay, _), relay.client() as client:
        task_id = client.post("/luma/generations", json={"user_prompt": "slow"}).json()["id"]

    async def steps() -> None:
        async with (
            Runtime.from_settings(relay.settings) as rt,
            Runtime.from_settings(relay.settings) as writer,
        ):
            mirror = InFlightMirror(10, lookback=task_store.feed_lookback(rt.db.is_sqlite))
            await mirror.sync(rt.db)
            async with rt.db.reader() as conn:
                task = await task_store.get_task(conn, task_id)
            assert task is not None and task.state is TaskState.PENDING
            mirror.keep(task)
            moved = await lifecycle.transition(writer, task, lifecycle.Change(state=TaskState.PROCESSING))
            assert moved is not None
            held = mirror.get(task_id, task.account_id)
            assert held is not None and held.state is TaskState.PENDING  # until the next feed read
            assert await mirror.sync(rt.db) >= 1
            now = mirror.get(task_id, task.account_id)
            assert now is not None and now.state is TaskState.PROCESSING and now.body == moved.body
            assert mirror.get(task_id, task.account_id + 1) is None  # another account: nothing
            mirror._synced_at -= 2 * mirror.bound  # the feed stalled
            assert mirror.get(task_id, task.account_id) is None
            assert mirror.get_many([task_id], task.account_id) == [None]
            finished = await lifecycle.transition(writer, moved, lifecycle.Change(state=TaskState.FAILED))
            assert finished is not None
            await mirror.sync(rt.db)
            assert mirror.get(task_id, task.account_id) is None and len(mirror) == 0  # finished: gone

    asyncio.run(steps())


def test_a_burst_of_changes_is_read_a_page_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More changes than a page since the last feed read (a bulk load, a mass refund): one sync reads them
    all, a page at a time (never one unbounded result), and mirrors every task still in flight."""
    monkeypatch.setattr(inflight, "FEED_PAGE", 5)
    pages: list[int] = []
    read_page = task_store.changed_since

    async def counted(conn: Any, after: int, limit: int) -> Any:
        found = await read_page(conn, after, limit)
        pages.append(len(found))
        return found

    monkeypatch.setattr(task_store, "changed_since", counted)
    with reader(tmp_path) as (relay, _), relay.client() as client:

        async def first() -> InFlightMirror:
            async with Runtime.from_settings(relay.settings) as rt:
                mirror = InFlightMirror(100, lookback=task_store.feed_lookback(rt.db.is_sqlite))
                await mirror.sync(rt.db)
                return mirror

        mirror = asyncio.run(first())
        ids = [client.post("/luma/generations", json={"user_prompt": "slow"}).json()["id"] for _ in range(12)]

    async def catch_up() -> None:
        async with Runtime.from_settings(relay.settings) as rt:
            pages.clear()  # the relay's own feed read through it too, while it ran
            assert await mirror.sync(rt.db) == 12
        assert pages == [5, 5, 2]
        assert mirror.fresh() and len(mirror) == 12
        held = [mirror._tasks.get(task_id) for task_id in ids]
        assert all(t is not None and t.state is TaskState.PENDING for t in held)

    asyncio.run(catch_up())


def test_another_accounts_in_flight_task_stays_invisible(tmp_path: Path) -> None:
    with reader(tmp_path) as (relay, rt), relay.client() as client:
        task_id = client.post("/luma/generations", json={"user_prompt": "slow"}).json()["id"]
        assert client.get(f"/luma/generations/{task_id}").status_code == 200  # mirrored now
        other = relay.new_key("someone-else", balance=1000)
        with relay.client(other) as stranger:
            for path in (
                f"/luma/generations/{task_id}",
                f"/dream-machine/v1/generations/{task_id}",
                f"/agents/v1/generations/{task_id}",
            ):
                assert stranger.get(path).status_code == 404, path
            assert stranger.post("/luma/tasks", json={"ids": [task_id]}).json() == []
        assert task_id in rt.inflight._tasks


def test_every_family_reads_in_flight_tasks_from_the_mirror(tmp_path: Path) -> None:
    """A task created before the mirror knew it is read from the store once, then from memory; the
    answers stay byte for byte what the store's row gives."""
    with reader(tmp_path) as (relay, rt), relay.client() as client:
        task_id = client.post("/luma/generations", json={"user_prompt": "slow"}).json()["id"]
        rt.inflight._drop(task_id)  # as if created before this process started
        assert client.post("/luma/tasks", json={"ids": [task_id]}).status_code == 200
        assert task_id in rt.inflight._tasks  # the batch's store read mirrored it
        task = asyncio.run(stored(relay.settings, task_id))
        assert client.get(f"/luma/generations/{task_id}").content == task.body
        assert client.get(f"/dream-machine/v1/generations/{task_id}").content == official.encode_generation(
            task, rt.media_base_url
        )
        acedata = client.post("/luma/tasks", json={"action": "retrieve", "id": task_id})
        assert acedata.status_code == 200, acedata.text
        assert orjson.loads(acedata.content)["id"] == task_id
        assert client.get(f"/agents/v1/generations/{task_id}").status_code == 404  # not an Agents task
        with httpx.Client(base_url=relay.url) as anonymous:
            assert anonymous.get(f"/luma/generations/{task_id}").status_code == 401


def test_many_task_reads_and_openai_videos_read_the_mirror_within_the_bound(tmp_path: Path) -> None:
    """AceData's retrieve_batch (services/reads.py::find_video_tasks) mirrors what it read from the store
    and then answers from memory; `GET /v1/videos/{id}` reads through `find_task`; both show a change
    made by the state writer in another process once the bound has passed."""
    with reader(tmp_path) as (relay, rt), relay.client() as client:
        task_id = client.post("/luma/generations", json={"user_prompt": "slow"}).json()["id"]
        rt.inflight._drop(task_id)  # as if created before this process started
        query = {"action": "retrieve_batch", "ids": [task_id, "not-an-id"]}
        first = client.post("/luma/tasks", json=query)
        assert first.status_code == 200 and [i["id"] for i in first.json()["items"]] == [task_id]
        assert task_id in rt.inflight._tasks  # read from the store once, from memory from now on
        video = client.post("/v1/videos", json={"prompt": "a boat"})
        assert video.status_code == 200, video.text
        video_id = video.json()["id"]
        assert client.get(f"/v1/videos/{video_id}").json()["status"] == "queued"
        assert video_id in rt.inflight._tasks

        write_elsewhere(relay.settings, task_id, "processing")
        write_elsewhere(relay.settings, video_id, "failed", "upstream gave up")
        after_the_bound(relay.settings)
        assert client.post("/luma/tasks", json=query).json()["items"][0]["state"] == "processing"
        failed = client.get(f"/v1/videos/{video_id}").json()
        assert failed["status"] == "failed", failed
        assert video_id not in rt.inflight._tasks  # finished: the body cache's now
        with relay.client(relay.new_key("someone-else", balance=1000)) as stranger:
            assert stranger.post("/luma/tasks", json=query).json() == {"items": [], "count": 0}
            assert stranger.get(f"/v1/videos/{video_id}").status_code == 404
