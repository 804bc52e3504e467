"""Issue 12 item 10 over HTTP: control characters in URL fields are a 400 (never silently stripped),
and wrong admin tokens are throttled like console sign-ins."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from dreamrelay.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from dreamrelay.runtime import Runtime
from dreamrelay.services.auth import SIGN_IN_ATTEMPTS_PER_MINUTE
from dreamrelay.shared_state import connect_redis
from dreamrelay.store.schema import accounts, tasks
from tests.conftest import Relay, make_settings, relays_by_store, start_relay
from tests.support.services import redis_prefix

pytestmark = pytest.mark.both_stores

HOOK = "http://127.0.0.1:9/a"  # allowed by the relay below: only the control character is wrong
SPELLINGS = ["\r\nX-Injected: 1", "\n", "\r", "\t", "\x00", "\x7f", "\x85"]


@pytest.fixture(scope="module")
def relays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Relay]]:
    data_dir = tmp_path_factory.mktemp("hardening")
    with relays_by_store(data_dir, sandbox_queued_seconds=60, allow_private_urls="127.0.0.0/8") as relay_for:
        yield relay_for


@pytest.fixture
def relay(relays: Callable[[str], Relay], store: str) -> Relay:
    """The module's relay on this test's store."""
    return relays(store)


def tasks_and_balance(relay: Relay) -> tuple[int, int]:
    async def read() -> tuple[int, int]:
        async with Runtime.from_settings(relay.settings) as rt, rt.db.reader() as conn:
            count = await conn.scalar(select(func.count()).select_from(tasks))
            balance = await conn.scalar(select(accounts.c.balance).where(accounts.c.name == "demo"))
            return int(count or 0), int(balance or 0)

    return asyncio.run(read())


def cases(bad: str) -> list[tuple[str, dict[str, Any], str]]:
    """(path, body, field) for every URL field a customer sends."""
    hooked = HOOK + bad + "b"
    image = "http://127.0.0.1:9/cat" + bad + ".png"
    return [
        ("/luma/generations", {"user_prompt": "x", "notify_hook": hooked}, "notify_hook"),
        ("/luma/generations", {"user_prompt": "x", "callback_url": hooked}, "notify_hook"),
        ("/luma/generations", {"user_prompt": "x", "image_url": image}, "image_url"),
        ("/luma/generations", {"user_prompt": "x", "image_end_url": image}, "image_end_url"),
        ("/dream-machine/v1/generations", {"prompt": "x", "callback_url": hooked}, "callback_url"),
        (
            "/dream-machine/v1/generations",
            {"prompt": "x", "keyframes": {"frame0": {"type": "image", "url": image}}},
            "keyframes.frame0.url",
        ),
        ("/kling/v1/images/generations", {"prompt": "x", "callback_url": hooked}, "callback_url"),
        ("/kling/v1/images/generations", {"prompt": "x", "image": image}, "image"),
    ]


@pytest.mark.parametrize("bad", SPELLINGS, ids=[repr(s) for s in SPELLINGS])
def test_control_characters_in_any_url_field_are_a_clear_400_that_changes_nothing(
    relay: Relay, bad: str
) -> None:
    before = tasks_and_balance(relay)
    with relay.client() as client:
        for path, body, field_name in cases(bad):
            answer = client.post(path, json=body)
            assert answer.status_code == 400, (path, field_name, answer.text)
            data = answer.json()
            message = data["detail"] if "detail" in data else data["error"]["message"]
            if bad == "\x00":  # refused for the whole body before the fields are read
                assert "NUL" in message, (path, message)
            else:
                assert field_name in message and "control characters" in message, (path, message)
    assert tasks_and_balance(relay) == before


def test_the_same_url_without_the_control_character_is_accepted(relay: Relay) -> None:
    """The control: only the control character made the 400s above."""
    with relay.client() as client:
        answer = client.post("/luma/generations", json={"user_prompt": "x", "notify_hook": HOOK + "b"})
    assert answer.status_code == 200, answer.text


def test_a_channel_base_url_with_a_control_character_is_a_400(relay: Relay) -> None:
    with relay.admin() as admin:
        answer = admin.post(
            "/admin/channels", json={"name": "crlf", "kind": "luma", "base_url": "https://a.example\r\n.com"}
        )
        assert answer.status_code == 400 and "control characters" in answer.json()["error"]["message"]
        assert "crlf" not in [c["name"] for c in admin.get("/admin/channels").json()]


@pytest.mark.sqlite_only
def test_wrong_admin_tokens_are_throttled_with_the_console_sign_in(tmp_path: Path) -> None:
    with start_relay(make_settings(tmp_path)) as relay:
        token = relay.admin().headers["Authorization"]
        wrong = {"Authorization": "Bearer dra-guess"}
        with httpx.Client(base_url=relay.url, timeout=10) as client:
            # Console sign-ins and admin guesses from one address share the attempts.
            page = client.get("/console/login")
            csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            signed = client.post("/console/login", data={"csrf": csrf, "secret": "dr-nope"})
            assert signed.status_code == 401
            answers = [
                client.get("/admin/accounts", headers=wrong) for _ in range(SIGN_IN_ATTEMPTS_PER_MINUTE)
            ]
            statuses = [a.status_code for a in answers]
            assert statuses == [401] * (SIGN_IN_ATTEMPTS_PER_MINUTE - 1) + [429]
            refused = answers[-1]
            assert (
                refused.json()["error"]["code"] == "rate_limited" and int(refused.headers["Retry-After"]) >= 1
            )
            # Out of attempts, even the right token gets the same 429: a guess cannot be told by its status.
            assert client.get("/admin/accounts", headers={"Authorization": token}).status_code == 429
            time.sleep(int(refused.headers["Retry-After"]) + 0.2)
            # A right token uses no attempt: an operator's script is never throttled by its own requests.
            for _ in range(SIGN_IN_ATTEMPTS_PER_MINUTE + 5):
                assert client.get("/admin/accounts", headers={"Authorization": token}).status_code == 200


@pytest.mark.sqlite_only
def test_asking_costs_nothing_on_both_limiters() -> None:
    """cost=0 (a right admin token) only asks: same answer in process memory and in Redis."""

    async def run(limiter: RateLimiter, bucket: str) -> list[bool]:
        seen = [(await limiter.hit(bucket, 2, cost=0)).allowed for _ in range(5)]
        seen += [(await limiter.hit(bucket, 2)).allowed for _ in range(3)]
        seen.append((await limiter.hit(bucket, 2, cost=0)).allowed)
        return seen

    expected = [True] * 5 + [True, True, False, False]
    assert asyncio.run(run(MemoryRateLimiter(), "b")) == expected

    async def redis_run(prefix: str) -> list[bool]:
        redis = connect_redis("redis://127.0.0.1:6379/0")
        try:
            return await run(RedisRateLimiter(redis, prefix), "b")
        finally:
            await redis.aclose()

    for prefix in redis_prefix():
        assert asyncio.run(redis_run(prefix)) == expected
