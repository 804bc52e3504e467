"""Rate limits per key: requests per minute, batch queries per minute, tasks in flight; shared via Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from dreamrelay.ratelimit import MemoryRateLimiter, RedisRateLimiter
from dreamrelay.shared_state import connect_redis
from tests.conftest import make_settings, start_relay
from tests.integration.test_luma_lifecycle import wait_for
from tests.support.services import REDIS_URL

pytestmark = pytest.mark.both_stores


def test_requests_per_minute_answer_429_with_retry_after(tmp_path: Path) -> None:
    with start_relay(make_settings(tmp_path)) as relay:
        key = relay.new_key("chatty", balance=0, rpm=3)
        with relay.client(key) as client:
            answers = [client.post("/luma/tasks", json={"ids": []}) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["x-ratelimit-remaining"] for a in answers[:3]] == ["2", "1", "0"]
        limited = answers[3]
        assert limited.json()["error"]["code"] == "rate_limited"
        assert limited.headers["x-ratelimit-limit"] == "3"
        # One token comes back every 60/3 = 20 seconds.
        assert 18 <= int(limited.headers["retry-after"]) <= 20
        assert int(limited.headers["x-ratelimit-reset"]) <= 60


def test_batch_queries_have_their_own_budget(tmp_path: Path) -> None:
    with start_relay(make_settings(tmp_path)) as relay:
        key = relay.new_key("poller", balance=0, batch_rpm=2)
        with relay.client(key) as client:
            codes = [client.post("/luma/tasks", json={"ids": []}).status_code for _ in range(3)]
            assert codes == [200, 200, 429]
            assert client.get("/luma/generations/unknown").status_code == 404  # other routes still pass


def test_tasks_in_flight_cap_frees_a_slot_when_a_task_ends(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sandbox_queued_seconds=1.5)
    with start_relay(settings) as relay:
        key = relay.new_key("busy", balance=10_000, max_in_flight=1)
        with relay.client(key) as client:
            first = client.post("/luma/generations", json={"user_prompt": "one", "resolution": "540p"})
            assert first.status_code == 200
            second = client.post("/luma/generations", json={"user_prompt": "two", "resolution": "540p"})
            assert second.status_code == 429
            assert second.json()["error"]["code"] == "rate_limited" and second.headers["retry-after"]
            wait_for(client, first.json()["id"], {"completed", "failed"})
            third = client.post("/luma/generations", json={"user_prompt": "three", "resolution": "540p"})
            assert third.status_code == 200


def _submit(client: httpx.Client) -> int:
    body = {"user_prompt": "limits off", "resolution": "540p"}
    return client.post("/luma/generations", json=body).status_code


def test_zero_server_limits_switch_each_limit_off(tmp_path: Path) -> None:
    off = {"rate_limit_rpm": 0, "rate_limit_batch_rpm": 0, "rate_limit_in_flight": 0}
    with start_relay(make_settings(tmp_path, sandbox_queued_seconds=60.0, **off)) as relay:
        free = relay.new_key("free", balance=10_000)
        capped = relay.new_key("capped", balance=10_000, rpm=10, batch_rpm=2, max_in_flight=1)
        with relay.client(free) as client:
            batches = [client.post("/luma/tasks", json={"ids": []}) for _ in range(4)]
            assert [b.status_code for b in batches] == [200] * 4
            assert all("x-ratelimit-limit" not in b.headers for b in batches)  # no bucket was asked
            assert [_submit(client) for _ in range(3)] == [200] * 3  # three in flight at once
        with relay.client(capped) as client:  # a key's own limits still apply
            assert [_submit(client) for _ in range(2)] == [200, 429]
            codes = [client.post("/luma/tasks", json={"ids": []}).status_code for _ in range(3)]
            assert codes == [200, 200, 429]


def test_zero_key_limits_override_the_server_limits(tmp_path: Path) -> None:
    low = {"rate_limit_rpm": 3, "rate_limit_batch_rpm": 2, "rate_limit_in_flight": 1}
    with start_relay(make_settings(tmp_path, sandbox_queued_seconds=60.0, **low)) as relay:
        free = relay.new_key("free", balance=10_000, rpm=0, batch_rpm=0, max_in_flight=0)
        with relay.client(free) as client:
            assert [_submit(client) for _ in range(3)] == [200] * 3
            assert [client.post("/luma/tasks", json={"ids": []}).status_code for _ in range(4)] == [200] * 4
        default = relay.new_key("default", balance=10_000)
        with relay.client(default) as client:
            assert [_submit(client) for _ in range(2)] == [200, 429]


def test_two_server_processes_share_one_limit_through_redis(tmp_path: Path, redis_ns: str) -> None:
    shared = {"redis_url": REDIS_URL, "redis_prefix": redis_ns}
    first_settings = make_settings(tmp_path / "a", **shared)
    second_settings = make_settings(tmp_path / "a", **shared)  # same data dir and store, another server
    with start_relay(first_settings) as one:
        key = one.new_key("shared", balance=0, rpm=4)
        from dreamrelay.http.app import create_app
        from tests.support.live_server import live_server

        with live_server(create_app(second_settings), port=second_settings.port) as other_url:
            codes = []
            for url in (one.url, other_url, one.url, other_url, one.url, other_url):
                response = httpx.post(
                    url + "/luma/tasks", json={"ids": []}, headers={"Authorization": f"Bearer {key}"}
                )
                codes.append(response.status_code)
            assert codes == [200, 200, 200, 200, 429, 429]


@pytest.mark.sqlite_only  # the limiter alone: no store
@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_bucket_refills_over_time(kind: str, redis_ns: str) -> None:
    async def run() -> None:
        redis = connect_redis(REDIS_URL)
        limiter = MemoryRateLimiter() if kind == "memory" else RedisRateLimiter(redis, redis_ns)
        try:
            # 30 per minute = one token every 2 s: the 31 hits below take far less than one refill,
            # even on a loaded machine (at 120 per minute, 121 hits had to fit in 0.5 s).
            decisions = [await limiter.hit("k", 30) for _ in range(31)]
            assert all(d.allowed for d in decisions[:30]) and not decisions[30].allowed
            assert decisions[30].retry_after == 2
            await asyncio.sleep(decisions[30].retry_after)  # the wait it announced refills a token
            assert (await limiter.hit("k", 30)).allowed
            assert (await limiter.hit("other", 30)).allowed
        finally:
            await redis.aclose()

    asyncio.run(run())


def test_admin_api_sets_a_key_limit_to_0_and_a_price_to_0(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rate_limit_batch_rpm=2)
    with start_relay(settings) as relay, relay.admin() as admin:
        admin.post("/admin/accounts", json={"name": "acme", "balance": 100})
        assert admin.post("/admin/keys", json={"account": "acme", "batch_rpm": -1}).status_code == 400
        made = admin.post("/admin/keys", json={"account": "acme", "batch_rpm": 0})
        assert made.status_code == 201
        free = {"model": "ray-flash-2", "resolution": "540p", "duration": "5s", "credits": 0}
        assert admin.put("/admin/prices", json=free).status_code == 200
        with relay.client(made.json()["key"]) as client:
            codes = [client.post("/luma/tasks", json={"ids": []}).status_code for _ in range(3)]
            assert codes == [200, 200, 200]
            body = {"user_prompt": "free", "model_name": "ray-flash-2", "resolution": "540p"}
            task = client.post("/luma/generations", json=body).json()
        assert admin.get("/admin/ledger", params={"task_id": task["id"]}).json() == []
        assert admin.get("/admin/accounts/acme").json()["balance"] == 100
