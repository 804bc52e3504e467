"""The `dreamrelay-client` library, installed as a customer installs it, against a live DreamRelay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from dreamrelay_client import (
    AsyncClient,
    Client,
    Conflict,
    InsufficientBalance,
    NotFound,
    PermissionDenied,
    RateLimited,
    Task,
    TaskFailed,
    WaitTimeout,
    WebhookVerificationError,
    verify_webhook,
)

from tests.conftest import Relay, make_settings, start_relay
from tests.support.receiver import running_receiver


class Counting(httpx.HTTPTransport):
    """The real transport, recording each request's method, path and status (and able to lose one answer)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, int]] = []
        self.times: list[float] = []
        self.lose_next_submit_answer = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.seen.append((request.method, request.url.path, response.status_code))
        self.times.append(time.monotonic())
        if self.lose_next_submit_answer and request.url.path == "/luma/generations":
            self.lose_next_submit_answer = False
            response.read()
            raise httpx.ReadError("connection reset after the server answered", request=request)
        return response

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.seen if m == method and p == path)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    settings = make_settings(tmp_path, allow_private_urls="127.0.0.0/8", callback_retry_base_seconds=0.05)
    with start_relay(settings) as running:
        yield running


def _is_h264_mp4(path: Path) -> bool:
    with av.open(str(path)) as container:
        assert container.format.name.startswith("mov,mp4")
        return bool(container.streams.video[0].codec_context.name == "h264")


def test_submit_wait_download_gives_an_h264_mp4_in_few_requests(relay: Relay, tmp_path: Path) -> None:
    transport = Counting()
    with Client(relay.key, relay.url, transport=transport) as client:
        task = client.submit("a paper boat on a rainy street", resolution="540p")
        assert isinstance(task, Task) and task.state == "pending" and task.video is None
        done = client.wait(task, interval=0.2)
        assert done.completed and done.video is not None and done.video.width and done.thumbnail
        saved = client.download(done, tmp_path / "boat.mp4")
        assert saved.stat().st_size > 1000 and _is_h264_mp4(saved)
        assert client.get(task.id).state == "completed"
        assert [t.id for t in client.batch([task.id, "unknown", task.id])] == [task.id]
    assert transport.count("POST", "/luma/generations") == 1
    assert transport.count("POST", "/luma/tasks") >= 1  # wait() polls with the batch query only
    assert transport.count("GET", f"/luma/generations/{task.id}") == 1  # the explicit get()


def test_wait_all_polls_many_tasks_with_one_request_per_round(relay: Relay) -> None:
    transport = Counting()
    with Client(relay.key, relay.url, transport=transport) as client:
        tasks = [client.submit(f"lanterns {n}", resolution="540p") for n in range(4)]
        finished = client.wait_all(tasks, interval=0.2)
    assert [t.id for t in finished] == [t.id for t in tasks] and all(t.completed for t in finished)
    rounds = transport.count("POST", "/luma/tasks")
    assert 1 <= rounds <= 40
    print(f"wait_all: {rounds} batch queries for {len(tasks)} tasks = {rounds / len(tasks):.2f} per task")


def test_a_lost_submit_answer_is_retried_with_the_same_idempotency_key(relay: Relay) -> None:
    transport = Counting()
    with Client(relay.key, relay.url, transport=transport) as client:
        before = client.balance()
        transport.lose_next_submit_answer = True
        task = client.submit("charged once", resolution="540p")
        assert transport.count("POST", "/luma/generations") == 2  # sent twice, answered twice
        assert client.balance() < before
        with relay.client() as raw:
            holds = raw.get("/account/ledger", params={"kind": "hold"}).json()
        assert [h["task_id"] for h in holds] == [task.id]  # one task, one hold


def test_429_waits_for_retry_after_then_succeeds(relay: Relay) -> None:
    key = relay.new_key("busy", balance=0, rpm=60)  # one request a second once the bucket is empty
    transport = Counting()
    with Client(key, relay.url, transport=transport) as client:
        for _ in range(200):  # the client hides every 429 by waiting as told
            assert client.account()["name"] == "busy"
            if any(status == 429 for _, _, status in transport.seen):
                break
    limited = next(i for i, (_, _, status) in enumerate(transport.seen) if status == 429)
    assert transport.seen[limited + 1][2] == 200  # the retry passed
    assert transport.times[limited + 1] - transport.times[limited] >= 0.9  # after Retry-After: 1
    with Client(key, relay.url, max_retries=0) as client:
        for _ in range(3):
            try:
                client.account()
            except RateLimited as exc:
                assert exc.status == 429 and exc.code == "rate_limited" and exc.retry_after >= 1
                break
        else:
            raise AssertionError("never limited")


def test_typed_errors_for_402_403_404_409_and_failures(relay: Relay) -> None:
    poor = relay.new_key("poor", balance=0)
    with Client(poor, relay.url) as client, pytest.raises(InsufficientBalance) as paid:
        client.submit("no credits")
    assert paid.value.status == 402 and paid.value.code == "insufficient_balance"
    limited = relay.new_key("demo", allowed_models=["ray-flash-2"])
    with Client(limited, relay.url) as client, pytest.raises(PermissionDenied):
        client.submit("wrong model", model="ray-v2")
    with Client(relay.key, relay.url) as client:
        with pytest.raises(NotFound) as missing:
            client.get("00000000-0000-0000-0000-000000000000")
        assert missing.value.code == "task_not_found"
        stalled = client.submit("[sandbox:stall] forever", resolution="540p")
        with pytest.raises(Conflict) as early:
            client.download(stalled, "never.mp4")
        assert early.value.code == "task_not_ready"
        with pytest.raises(WaitTimeout) as late:
            client.wait(stalled, timeout=0.6, interval=0.2)
        assert late.value.tasks[0].id == stalled.id and not late.value.tasks[0].finished
        failing = client.submit("[sandbox:fail] please", resolution="540p")
        with pytest.raises(TaskFailed) as failed:
            client.wait(failing, interval=0.2)
        assert failed.value.task.failed and failed.value.task.failure_reason
        assert client.wait(failing, raise_on_failure=False).failed


def test_async_client_does_the_same(relay: Relay, tmp_path: Path) -> None:
    async def scenario() -> tuple[Task, Task, Path]:
        async with AsyncClient(relay.key, relay.url) as client:
            first = await client.submit("async koi", resolution="540p")
            done = await client.wait(first, interval=0.2)
            more = await client.extend(done, "the koi dives")
            saved = await client.download(done, tmp_path / "koi.mp4")
            assert [t.id for t in await client.batch([first.id])] == [first.id]
            assert await client.balance() >= 0
            return done, more, saved

    done, more, saved = asyncio.run(scenario())
    assert done.completed and more.state == "pending" and more.id != done.id
    assert _is_h264_mp4(saved)


def test_verify_webhook_accepts_dreamrelays_callbacks_and_nothing_else(relay: Relay) -> None:
    with relay.client() as raw:
        secret = raw.get("/account/callback_secret").json()["secret"]
    with running_receiver() as receiver, Client(relay.key, relay.url) as client:
        task = client.submit("a signed heron", resolution="540p", callback_url=f"{receiver.url}/hook")
        client.wait(task, interval=0.2)
        deadline = time.monotonic() + 30
        while len(receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert receiver.received, "no callback arrived"
    payloads: list[Any] = [verify_webhook(secret, r.headers, r.body) for r in receiver.received]
    assert {p["id"] for p in payloads} == {task.id}
    first = receiver.received[0]
    for headers, body in (
        (first.headers, first.body + b" "),  # body changed
        ({**first.headers, "webhook-id": "msg_other"}, first.body),  # id changed
        ({k: v for k, v in first.headers.items() if k != "webhook-signature"}, first.body),
    ):
        with pytest.raises(WebhookVerificationError):
            verify_webhook(secret, headers, body)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, first.headers, first.body, now=time.time() + 3600)  # a replay, later
    with pytest.raises(WebhookVerificationError):
        verify_webhook("whsec_" + "A" * 44, first.headers, first.body)  # another account's secret


def test_the_library_needs_only_httpx() -> None:
    from importlib.metadata import requires

    needed = [r for r in requires("dreamrelay-client") or [] if "extra ==" not in r]
    assert needed == ["httpx==0.28.1"]
