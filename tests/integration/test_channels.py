"""Channels: relay chains with batched polls, failover, faults, benching, pinned extends, callbacks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from dreamrelay.runtime import Runtime
from dreamrelay.settings import Settings
from dreamrelay.store.schema import tasks
from tests.conftest import Relay, make_settings, start_relay
from tests.integration.test_luma_lifecycle import wait_for
from tests.support.media import decode_mp4
from tests.support.upstreams import CountingProxy, FakeRelay, resetting_server, running, small_video

pytestmark = pytest.mark.both_stores

FAST = {
    "poll_error_base_seconds": 0.05,
    "rate_limit_in_flight": 1000,
    "rate_limit_rpm": 100_000,
    "rate_limit_batch_rpm": 100_000,
}


def settings_for(path: Path, **overrides: object) -> Settings:
    return make_settings(path, **{**FAST, **overrides})


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return small_video(tmp_path_factory.mktemp("video") / "v.mp4")


def add_channel(
    relay: Relay, name: str, base_url: str, *, kind: str = "relay", **extra: Any
) -> dict[str, Any]:
    with relay.admin() as admin:
        answer = admin.post(
            "/admin/channels",
            # The upstreams here live on loopback: the operator allows their media to come from there.
            json={
                "name": name,
                "kind": kind,
                "base_url": base_url,
                "secret_key": "k",
                "media_networks": "127.0.0.0/8",
                **extra,
            },
        )
    assert answer.status_code == 201, answer.text
    found: dict[str, Any] = answer.json()
    return found


def set_channel(relay: Relay, name: str, **values: Any) -> None:
    with relay.admin() as admin:
        assert admin.patch(f"/admin/channels/{name}", json=values).status_code == 200


def task_info(relay: Relay, task_id: str) -> dict[str, Any]:
    with relay.admin() as admin:
        found: dict[str, Any] = admin.get(f"/admin/tasks/{task_id}").json()
        return found


def balance(relay: Relay) -> int:
    with relay.admin() as admin:
        return int(admin.get("/admin/accounts/demo").json()["balance"])


def submit(client: httpx.Client, prompt: str = "a slow river") -> httpx.Response:
    return client.post("/luma/generations", json={"user_prompt": prompt, "resolution": "540p"})


@pytest.fixture
def upstream_relay(tmp_path: Path) -> Iterator[Relay]:
    with start_relay(settings_for(tmp_path / "b")) as relay:
        yield relay


def test_a_chain_of_two_relays_serves_our_own_copy_of_the_media(
    tmp_path: Path, upstream_relay: Relay
) -> None:
    key_at_b = upstream_relay.new_key("relay-a", balance=10_000_000)
    with start_relay(settings_for(tmp_path / "a")) as relay:
        set_channel(relay, "sandbox", enabled=False)
        add_channel(relay, "b", upstream_relay.url, secret_key=key_at_b)
        with relay.client() as client:
            task = submit(client).json()
            done = wait_for(client, task["id"], {"completed", "failed"})
            assert done["state"] == "completed", done["failure_reason"]
            assert done["video"]["url"].startswith(f"{relay.url}/media/")
            assert not done["video"]["url"].startswith(upstream_relay.url)
            video = decode_mp4(httpx.get(done["video"]["url"]).content)
            assert (video.width, video.height) == (done["video"]["width"], done["video"]["height"])
        info = task_info(relay, task["id"])
        assert info["channel"] == "b" and info["upstream_id"] != task["id"]


# More than one batch of polls (up to 100 ids each). 200 tasks once; 120 show the same for 60 % of the
# CPU (each task's media is copied and probed: most of the test's cost, in one process with both relays).
MANY_TASKS = 120


@pytest.mark.sqlite_only  # it is about poll batching, not the store
def test_many_tasks_are_followed_with_batched_polls(tmp_path: Path) -> None:
    # b's worker calls b's mounted sandbox on loopback, as a and the proxy call b: up to 256 requests of
    # its own, and b's cap of requests in progress per address (256) then refused a's submits with 429s
    # (seen once the sandbox rendered fast). On a network a and b's sandbox are different addresses; here
    # b has no cap.
    with start_relay(settings_for(tmp_path / "b", max_requests_per_address=0)) as upstream_relay:
        _follow_many_tasks(tmp_path, upstream_relay)


def _follow_many_tasks(tmp_path: Path, upstream_relay: Relay) -> None:
    key_at_b = upstream_relay.new_key("relay-a", balance=10_000_000)
    proxy = CountingProxy(upstream_relay.url)
    # Three servers and the test share one process: on a loaded machine an answer from b can take longer
    # than the default 30 s (a 502, then b benched: 503s), and copies of b's media for every task longer
    # than the tests' 120 s task deadline (seen once in a full run). The subject here is batching, not
    # timeouts.
    settings = settings_for(tmp_path / "a", upstream_timeout_seconds=120.0, task_deadline_seconds=600.0)
    with running(proxy) as proxy_url, start_relay(settings) as relay:
        set_channel(relay, "sandbox", enabled=False)
        add_channel(relay, "b", proxy_url, secret_key=key_at_b, concurrency=4)
        with relay.client() as client, ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: submit(client, "one prompt, one render"), range(MANY_TASKS)))
            assert {a.status_code for a in answers} == {200}
            ids = [a.json()["id"] for a in answers]
            for task_id in ids:
                done = wait_for(client, task_id, {"completed", "failed"}, timeout=180)
                assert done["state"] == "completed", done["failure_reason"]
    submits = proxy.count("POST", "/luma/generations")
    batch_polls = proxy.count("POST", "/luma/tasks")
    assert submits == MANY_TASKS
    # One request per task every few seconds would be hundreds; batches of up to 100 need far fewer.
    assert batch_polls < MANY_TASKS // 2, batch_polls
    assert (submits + batch_polls) / MANY_TASKS < 1.5


@pytest.mark.parametrize("mode", ["429", "500"])
def test_busy_or_broken_upstreams_fail_over_without_a_second_task(
    tmp_path: Path, video: bytes, mode: str
) -> None:
    fake = FakeRelay(mode, video)
    with running(fake) as fake_url, start_relay(settings_for(tmp_path)) as relay:
        add_channel(relay, "flaky", fake_url, priority=10)
        with relay.client() as client:
            answer = submit(client)
            assert answer.status_code == 200
            done = wait_for(client, answer.json()["id"], {"completed", "failed"})
        assert done["state"] == "completed"
        assert task_info(relay, done["id"])["channel"] == "sandbox"
    assert fake.count("POST", "/luma/generations") == 1


def test_an_unreachable_upstream_fails_over(tmp_path: Path) -> None:
    with start_relay(settings_for(tmp_path)) as relay:
        add_channel(relay, "gone", "http://127.0.0.1:9", priority=10)
        with relay.client() as client:
            answer = submit(client)
            assert answer.status_code == 200
            assert task_info(relay, answer.json()["id"])["channel"] == "sandbox"


def _unknown_outcome(relay: Relay, fake: FakeRelay | None) -> None:
    before = balance(relay)
    with relay.client() as client:
        answer = submit(client)
    assert answer.status_code == 502, answer.text
    assert answer.json()["error"]["code"] == "upstream_error"
    with relay.admin() as admin:
        tasks = admin.get("/admin/tasks", params={"state": "failed"}).json()
        assert len(tasks) == 1
        rows = admin.get("/admin/ledger", params={"task_id": tasks[0]["id"]}).json()
    assert sorted(r["kind"] for r in rows) == ["hold", "release"]
    assert balance(relay) == before
    if fake is not None:
        assert fake.count("POST", "/luma/generations") == 1


@pytest.mark.parametrize("mode", ["slow", "badjson"])
def test_an_unknown_outcome_is_never_sent_elsewhere(tmp_path: Path, video: bytes, mode: str) -> None:
    fake = FakeRelay(mode, video, slow_seconds=3)
    with running(fake) as fake_url, start_relay(settings_for(tmp_path, upstream_timeout_seconds=1)) as relay:
        add_channel(relay, "odd", fake_url, priority=10)
        _unknown_outcome(relay, fake)


def test_a_connection_reset_after_sending_is_an_unknown_outcome(tmp_path: Path) -> None:
    with resetting_server() as reset_url, start_relay(settings_for(tmp_path)) as relay:
        add_channel(relay, "reset", reset_url, priority=10)
        _unknown_outcome(relay, None)


def test_an_upstream_that_loses_the_task_ends_it_failed_and_refunded_once(
    tmp_path: Path, video: bytes
) -> None:
    fake = FakeRelay("lose", video)
    with running(fake) as fake_url, start_relay(settings_for(tmp_path, poll_error_limit=4)) as relay:
        set_channel(relay, "sandbox", enabled=False)
        add_channel(relay, "forgetful", fake_url)
        before = balance(relay)
        with relay.client() as client:
            task = submit(client).json()
            done = wait_for(client, task["id"], {"completed", "failed"})
        assert done["state"] == "failed" and "stopped answering" in done["failure_reason"]
        assert balance(relay) == before
        rows = task_info(relay, task["id"])["ledger"]
        assert sorted(r["kind"] for r in rows) == ["hold", "release"]
    assert fake.count("POST", "/luma/tasks") == 4


def test_a_rate_limited_poll_means_later_not_failed(tmp_path: Path, video: bytes) -> None:
    fake = FakeRelay("poll429", video, poll_429s=3)
    with running(fake) as fake_url, start_relay(settings_for(tmp_path, poll_error_limit=2)) as relay:
        set_channel(relay, "sandbox", enabled=False)
        add_channel(relay, "strict", fake_url)
        with relay.client() as client:
            task = submit(client).json()
            done = wait_for(client, task["id"], {"completed", "failed"})
        assert done["state"] == "completed", done["failure_reason"]
        assert task_info(relay, task["id"])["poll_errors"] == 0
    assert fake.count("POST", "/luma/tasks") == 4


def test_a_failing_channel_is_benched_then_tried_again(tmp_path: Path, video: bytes) -> None:
    fake = FakeRelay("500", video)
    settings = settings_for(tmp_path, channel_failure_threshold=2, channel_bench_seconds=1.5)
    with running(fake) as fake_url, start_relay(settings) as relay, relay.client() as client:
        add_channel(relay, "flaky", fake_url, priority=10)
        for _ in range(3):
            assert submit(client).status_code == 200
        assert fake.count("POST", "/luma/generations") == 2  # benched after the second failure
        with relay.admin() as admin:
            flaky = next(c for c in admin.get("/admin/channels").json() if c["name"] == "flaky")
        assert flaky["failures"] == 2 and flaky["benched_until"] and "500" in flaky["last_error"]
        assert flaky["secret_key"] == "…"  # never shown in clear
        time.sleep(1.6)
        assert submit(client).status_code == 200
        assert fake.count("POST", "/luma/generations") == 3  # re-tested once the bench ended


def test_an_extend_goes_to_the_parents_channel(tmp_path: Path, video: bytes) -> None:
    fake = FakeRelay("ok", video)
    with running(fake) as fake_url, start_relay(settings_for(tmp_path)) as relay, relay.client() as client:
        parent = submit(client).json()
        wait_for(client, parent["id"], {"completed"})
        add_channel(relay, "preferred", fake_url, priority=100)
        child = client.post(f"/luma/generations/{parent['id']}/extend", json={"user_prompt": "and then"})
        assert child.status_code == 200
        assert task_info(relay, child.json()["id"])["channel"] == "sandbox"
        assert fake.count("POST", f"/luma/generations/{parent['id']}/extend") == 0
        assert fake.requests == []
        # A new task does go to the preferred channel.
        fresh = submit(client).json()
        assert task_info(relay, fresh["id"])["channel"] == "preferred"


def test_an_upstream_callback_completes_the_task_without_polling(relay: Relay) -> None:
    with relay.client() as client:
        task = submit(client).json()
        done = wait_for(client, task["id"], {"completed", "failed"})
    assert done["state"] == "completed"
    info = task_info(relay, task["id"])
    assert info["poll_count"] == 0 and info["upstream_state"] == "completed"


def test_a_forged_or_replayed_upstream_callback_changes_nothing(relay: Relay) -> None:
    with relay.client() as client:
        task = submit(client, "stays put [sandbox:stall]").json()
        info = task_info(relay, task["id"])
        forged = {
            "id": info["upstream_id"],
            "state": "completed",
            "assets": {"video": "http://127.0.0.1:9/x.mp4"},
        }
        answer = httpx.post(f"{relay.url}/upstream/callbacks/{task['id']}/not-the-token", json=forged)
        assert answer.status_code == 404
        assert httpx.post(f"{relay.url}/upstream/callbacks/nope/nope", json=forged).status_code == 404
        assert client.get(f"/luma/generations/{task['id']}").json()["state"] in ("pending", "processing")
        # The real token with a stale report (upstream retrying an old "queued"): accepted, changes nothing.
        token = asyncio.run(upstream_token(relay, task["id"]))
        stale = {"id": info["upstream_id"], "state": "queued", "assets": None}
        replayed = httpx.post(f"{relay.url}/upstream/callbacks/{task['id']}/{token}", json=stale)
        assert replayed.status_code == 200 and replayed.json() == {"accepted": False}
        wrong_id = httpx.post(
            f"{relay.url}/upstream/callbacks/{task['id']}/{token}", json={**forged, "id": "x"}
        )
        assert wrong_id.status_code == 400
        # The worker's own poll may move it from pending to processing meanwhile; nothing else.
        after = client.get(f"/luma/generations/{task['id']}").json()
        assert after["state"] in ("pending", "processing") and after["video"] is None, after


async def upstream_token(relay: Relay, task_id: str) -> str:
    async with Runtime.from_settings(relay.settings) as rt, rt.db.reader() as conn:
        return str(
            (await conn.execute(select(tasks.c.upstream_token).where(tasks.c.id == task_id))).scalar_one()
        )
