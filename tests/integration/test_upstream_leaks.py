"""Issue 12 item 7: customers never read the upstream set-up. A small local upstream answers every request
with revealing text (a file path, a node name); channels are named and point at loopback ports. On every
error path that involves an upstream the customer gets our generic words and the request id; the details
reach the operator's views (admin API) only."""

from __future__ import annotations

import socket
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.conftest import Relay, make_settings, start_relay
from tests.integration.test_console import csrf, signed_in
from tests.support.receiver import running_receiver
from tests.support.upstreams import _answer, _lifespan, _read_body, resetting_server, running

SECRET = "crash in /srv/upstream/app.py line 42 (node up-7.internal)"


async def leaky_relay(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An own-format relay whose every error tells too much: `reject` → 400, `crash` → 500, `fail` →
    accepted, then failed with the same words."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body = orjson.loads(await _read_body(receive) or b"{}")
    if scope["path"] == "/luma/generations":
        prompt = body.get("user_prompt", "")
        if "reject" in prompt or "crash" in prompt:
            status = 400 if "reject" in prompt else 500
            await _answer(send, status, orjson.dumps({"error": {"message": SECRET}}))
            return
        await _answer(send, 200, orjson.dumps({"id": f"up-{uuid.uuid4()}", "state": "pending"}))
        return
    items = [{"id": i, "state": "failed", "failure_reason": SECRET} for i in body.get("ids", [])]
    await _answer(send, 200, orjson.dumps(items))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def channel(relay: Relay, name: str, base_url: str, **values: Any) -> None:
    with relay.admin() as admin:
        made = admin.post(
            "/admin/channels",
            json={"name": name, "kind": "relay", "base_url": base_url, "secret_key": "k", **values},
        )
        assert made.status_code == 201, made.text


def enabled(relay: Relay, name: str, on: bool) -> None:
    with relay.admin() as admin:
        assert admin.patch(f"/admin/channels/{name}", json={"enabled": on}).status_code == 200


def test_no_error_path_shows_a_customer_the_upstream_set_up(tmp_path: Path) -> None:
    dead = closed_port()
    settings = make_settings(
        tmp_path,
        allow_private_urls="127.0.0.0/8",
        poll_error_base_seconds=0.05,
        channel_failure_threshold=1000,
    )
    with (
        running(leaky_relay) as leaky_url,
        resetting_server() as reset_url,
        running_receiver() as receiver,
        start_relay(settings) as relay,
        relay.client() as client,
    ):
        secrets = [
            "up-7.internal", "/srv/upstream", "line 42", "leakychan", "deadchan", "resetchan",
            str(dead), leaky_url.rsplit(":", 1)[1], reset_url.rsplit(":", 1)[1],
        ]  # fmt: skip

        def hides(answer: httpx.Response, status: int) -> str:
            assert answer.status_code == status, answer.text
            text = answer.text
            assert [s for s in secrets if s in text] == [], text
            assert f"request id {answer.headers['x-request-id']}" in text, text
            return text

        enabled(relay, "sandbox", False)
        channel(relay, "leakychan", leaky_url, priority=10)
        channel(relay, "deadchan", f"http://127.0.0.1:{dead}", priority=5)

        # 400: the upstream refused the request (no other channel is tried).
        hides(client.post("/luma/generations", json={"user_prompt": "reject me"}), 400)
        official = client.post("/dream-machine/v1/generations", json={"prompt": "reject me"})
        assert set(hides(official, 400) and official.json()) == {"detail"}
        # The console's playground form shows the same refusal as a flash, in the same words.
        with closing(signed_in(relay, relay.key)) as browser:
            token = csrf(browser.get("/console/me/playground"))
            posted = browser.post("/console/me/playground", data={"csrf": token, "user_prompt": "reject me"})
            assert posted.status_code == 303, posted.text
            page = browser.get(posted.headers["location"])
            assert 'class="flash error"' in page.text and "the upstream refused this request" in page.text
            assert [s for s in secrets if s in page.text] == [], page.text

        # 503: the first channel crashes (500), the next one cannot be reached.
        for answer in (
            client.post("/luma/generations", json={"user_prompt": "crash please"}),
            client.post("/dream-machine/v1/generations", json={"prompt": "crash please"}),
        ):
            hides(answer, 503)

        # A failed task: the upstream's failure reason stays with the operator, in every customer view.
        hook = receiver.url + "/hook"
        accepted = client.post("/luma/generations", json={"user_prompt": "fail later", "notify_hook": hook})
        assert accepted.status_code == 200, accepted.text
        task_id = accepted.json()["id"]
        delivered = receiver.wait_for(1, timeout=60)
        failed = orjson.loads(delivered[-1].body)
        assert (
            failed["state"] == "failed"
            and failed["failure_reason"] == "the upstream could not complete this task"
        )
        views = [
            client.get(f"/luma/generations/{task_id}").text,
            client.post("/luma/tasks", json={"ids": [task_id]}).text,
            client.get(f"/dream-machine/v1/generations/{task_id}").text,
            client.get("/account/ledger", params={"task_id": task_id}).text,
            client.get("/account/deliveries", params={"task_id": task_id}).text,
            delivered[-1].body.decode(),
        ]
        for view in views:
            assert [s for s in secrets if s in view] == [], view
        with relay.admin() as admin:
            operator = admin.get(f"/admin/tasks/{task_id}").json()
        assert SECRET in operator["failure_reason"] and operator["channel"] == "leakychan"

        # 502: the only channel took the request and hung up: the outcome is unknown.
        enabled(relay, "leakychan", False)
        enabled(relay, "deadchan", False)
        channel(relay, "resetchan", reset_url)
        hides(client.post("/luma/generations", json={"user_prompt": "anything"}), 502)
