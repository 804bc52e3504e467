"""Callbacks to customers: a durable outbox, Standard Webhooks signatures, retries, replays, restarts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from dreamrelay.settings import Settings
from tests.conftest import Relay, free_port, make_settings, start_relay
from tests.integration.test_luma_lifecycle import wait_for
from tests.support.receiver import Received, running_receiver

pytestmark = pytest.mark.both_stores


def callback_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "allow_private_urls": "127.0.0.0/8",
        "callback_retry_base_seconds": 0.05,
        "callback_timeout_seconds": 0.5,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


def submit(client: httpx.Client, hook: str, prompt: str = "a lighthouse in fog") -> dict[str, Any]:
    answer = client.post(
        "/luma/generations", json={"user_prompt": prompt, "resolution": "540p", "notify_hook": hook}
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def events_of(relay: Relay, task_id: str) -> list[dict[str, Any]]:
    with relay.admin() as admin:
        events = admin.get("/admin/deliveries", params={"task_id": task_id}).json()
    return sorted(events, key=lambda e: e["sequence"])


def wait_settled(relay: Relay, task_id: str, timeout: float = 90) -> list[dict[str, Any]]:
    """Wait until the task is terminal and none of its events is still pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = events_of(relay, task_id)
        terminal = events and events[-1]["state"] in ("completed", "failed")
        if terminal and all(e["status"] != "pending" for e in events):
            return events
        time.sleep(0.1)
    raise AssertionError(f"events of {task_id} never settled: {events_of(relay, task_id)}")


def verify(secret: str, received: Received) -> Any:
    return Webhook(secret).verify(received.body, received.headers)


def test_retries_until_delivered_every_attempt_logged_and_signed(tmp_path: Path) -> None:
    with (
        running_receiver(["fail", "fail", "fail", "timeout"], stall_seconds=2) as receiver,
        start_relay(callback_settings(tmp_path)) as relay,
        relay.client() as client,
    ):
        task = submit(client, f"{receiver.url}/hook")
        wait_for(client, task["id"], {"completed"})
        events = wait_settled(relay, task["id"])
        final = client.get(f"/luma/generations/{task['id']}").json()
        secret = client.get("/account/callback_secret").json()["secret"]

    assert all(e["status"] == "delivered" for e in events)
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["state"] == "completed"
    # Every request (failed ones too) carries a valid Standard Webhooks signature.
    payloads = [verify(secret, r) for r in receiver.received]
    answered = [r.answered for r in receiver.received]
    assert answered[:4] == ["fail", "fail", "fail", "timeout"] and set(answered[4:]) == {"ok"}
    # The completed event's payload is exactly what GET returns.
    by_id = {r.headers["webhook-id"]: r for r in receiver.delivered()}
    completed = by_id[events[-1]["message_id"]]
    assert json.loads(completed.body) == final
    assert payloads[-1]["id"] == task["id"]
    # Every attempt is in the log, with status, latency and error.
    attempts = [a for e in events for a in e["attempts_log"]]
    assert len(attempts) == len(receiver.received)
    statuses = sorted((a["status_code"] or 0) for a in attempts)
    assert statuses.count(500) == 3 and statuses.count(0) == 1
    timed_out = next(a for a in attempts if a["status_code"] is None)
    assert "no answer within" in timed_out["error"] and timed_out["latency_ms"] >= 400
    assert all(e["attempts"] == len(e["attempts_log"]) for e in events)


def test_a_tampered_payload_or_a_wrong_secret_fails_verification(tmp_path: Path) -> None:
    with (
        running_receiver() as receiver,
        start_relay(callback_settings(tmp_path)) as relay,
        relay.client() as client,
    ):
        task = submit(client, f"{receiver.url}/hook")
        wait_settled(relay, task["id"])
        secret = client.get("/account/callback_secret").json()["secret"]
    received = receiver.delivered()[-1]
    verify(secret, received)
    tampered = Received(
        received.path, received.headers, received.body.replace(b"completed", b"failed"), 0, ""
    )
    with pytest.raises(WebhookVerificationError):
        verify(secret, tampered)
    with pytest.raises(WebhookVerificationError):
        verify("whsec_" + "A" * 43 + "=", received)


def test_one_event_per_state_change_in_order_and_replays_keep_the_webhook_id(tmp_path: Path) -> None:
    with (
        running_receiver() as receiver,
        start_relay(callback_settings(tmp_path)) as relay,
        relay.client() as client,
    ):
        task = submit(client, f"{receiver.url}/hook")
        events = wait_settled(relay, task["id"])
        states = [e["state"] for e in events]
        assert states in (["processing", "completed"], ["completed"])
        delivered = receiver.wait_for(len(events))
        assert [json.loads(r.body)["state"] for r in delivered] == states
        assert [int(r.headers["dreamrelay-sequence"]) for r in delivered] == [e["sequence"] for e in events]
        assert len({r.headers["webhook-id"] for r in delivered}) == len(events)

        with relay.admin() as admin:
            replayed = admin.post("/admin/deliveries/replay", json={"ids": [events[-1]["id"]]})
            assert replayed.json() == {"replayed": 1}
        again = receiver.wait_for(len(events) + 1)[-1]
        assert again.headers["webhook-id"] == events[-1]["message_id"]
        assert again.body == delivered[-1].body
        # A task without a callback URL makes no events at all.
        quiet = client.post("/luma/generations", json={"user_prompt": "no hook", "resolution": "540p"}).json()
        wait_for(client, quiet["id"], {"completed"})
        assert events_of(relay, quiet["id"]) == []


def test_a_failed_task_reports_its_failure_reason(tmp_path: Path) -> None:
    with (
        running_receiver() as receiver,
        start_relay(callback_settings(tmp_path)) as relay,
        relay.client() as client,
    ):
        task = submit(client, f"{receiver.url}/hook", prompt="doomed [sandbox:fail]")
        events = wait_settled(relay, task["id"])
        last = json.loads(receiver.wait_for(len(events))[-1].body)
        # The customer's callback carries our words; the upstream's stay with the operator (issue 12).
        assert last["state"] == "failed"
        assert last["failure_reason"] == "the upstream could not complete this task"


def test_pending_deliveries_survive_a_restart(tmp_path: Path) -> None:
    port = free_port()
    hook = f"http://127.0.0.1:{port}/hook"  # nothing listens there yet: every attempt fails
    # A refused connection fails at once; the long timeout only keeps a loaded machine from
    # turning it into "no answer within" before the refusal is read.
    settings = callback_settings(tmp_path, callback_retry_base_seconds=0.2, callback_timeout_seconds=10)
    with start_relay(settings) as relay, relay.client() as client:
        task = submit(client, hook)
        wait_for(client, task["id"], {"completed"})
        deadline = time.monotonic() + 20
        while not any(e["attempts"] >= 2 for e in events_of(relay, task["id"])):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        before = events_of(relay, task["id"])
        key = relay.key
    assert all(e["status"] == "pending" for e in before)
    # Only the task's first event is tried while it fails: the later ones wait their turn.
    assert "connection failed" in before[0]["last_error"]
    assert all(e["attempts"] == 0 for e in before[1:])

    with running_receiver(port=port) as receiver, start_relay(settings, key=key) as relay:
        events = wait_settled(relay, task["id"])
        delivered = receiver.wait_for(len(events))
    assert [e["status"] for e in events] == ["delivered"] * len(before)
    assert {r.headers["webhook-id"] for r in delivered} == {e["message_id"] for e in before}


def test_events_that_never_get_through_die_and_can_be_replayed(tmp_path: Path) -> None:
    settings = callback_settings(tmp_path, callback_give_up_seconds=0.5)
    with (
        running_receiver(["fail"] * 1000) as receiver,
        start_relay(settings) as relay,
        relay.client() as client,
    ):
        task = submit(client, f"{receiver.url}/hook")
        events = wait_settled(relay, task["id"])
        assert {e["status"] for e in events} == {"dead"}
        receiver.script.clear()
        with relay.admin() as admin:
            count = admin.post("/admin/deliveries/replay", json={"status": "dead"}).json()["replayed"]
        assert count == len(events)
        receiver.wait_for(len(events))
        assert {e["status"] for e in wait_settled(relay, task["id"])} == {"delivered"}


def test_rotation_signs_with_both_secrets_during_the_grace(tmp_path: Path) -> None:
    with (
        running_receiver() as receiver,
        start_relay(callback_settings(tmp_path)) as relay,
        relay.client() as client,
    ):
        old = client.get("/account/callback_secret").json()["secret"]
        rotated = client.post("/account/callback_secret/rotate").json()
        assert rotated["previous_secret"] == old and rotated["secret"] != old
        task = submit(client, f"{receiver.url}/hook")
        wait_settled(relay, task["id"])
        with relay.admin() as admin:
            assert admin.get("/admin/accounts/demo/callback_secret").json()["secret"] == rotated["secret"]
    received = receiver.delivered()[-1]
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    verify(old, received)
    verify(rotated["secret"], received)


def test_customers_see_only_their_own_deliveries(tmp_path: Path) -> None:
    with (
        running_receiver() as receiver,
        start_relay(callback_settings(tmp_path)) as relay,
        relay.client() as client,
    ):
        task = submit(client, f"{receiver.url}/hook")
        events = wait_settled(relay, task["id"])
        mine = client.get("/account/deliveries", params={"task_id": task["id"]}).json()
        assert [e["message_id"] for e in mine] == [e["message_id"] for e in reversed(events)]
        with relay.client(relay.new_key("other", balance=10)) as other:
            assert other.get("/account/deliveries", params={"task_id": task["id"]}).json() == []
            assert other.get("/account").json()["balance"] == 10
            assert (
                other.get("/account/callback_secret").json()["secret"]
                != (client.get("/account/callback_secret").json()["secret"])
            )
