"""Issue 26 item 24: the sandbox serves its output files only with the key or a link it signed, and a
request relayed by any common proxy finds nothing.

The file names are hashes of the render spec (a prompt predicts them), so a name alone must open nothing.
The relay itself still copies every output (the links it gets are signed), so tasks complete as before.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from dreamrelay.local_secrets import ensure_sandbox_key
from dreamrelay.sandbox.app import LoopbackOnly
from tests.conftest import Relay

pytestmark = pytest.mark.both_stores

SANDBOX = "/sandbox/dream-machine/v1"


def completed(relay: Relay, client: httpx.Client, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        task = client.get(f"/luma/generations/{task_id}").json()
        if task["state"] in ("completed", "failed"):
            return dict(task)
        assert time.monotonic() < deadline, task
        time.sleep(0.2)


def test_output_files_need_the_key_or_a_signed_link(relay: Relay) -> None:
    with relay.client() as customer:
        created = customer.post("/luma/generations", json={"user_prompt": "a red kite", "resolution": "540p"})
        assert created.status_code == 200, created.text
        task = completed(relay, customer, created.json()["id"])
    assert task["state"] == "completed", task  # the relay copied its output through the signed link
    key = ensure_sandbox_key(relay.settings)
    with httpx.Client(base_url=relay.url + SANDBOX, headers={"Authorization": f"Bearer {key}"}) as insider:
        generation = insider.get("/generations").json()["generations"][0]
    signed = generation["assets"]["video"]
    parts = urlsplit(signed)
    assert parts.query.startswith("signature=") and len(parts.query) == len("signature=") + 64
    bare = f"{relay.url}{parts.path}"

    fetched = httpx.get(signed)
    assert fetched.status_code == 200 and fetched.content[4:8] == b"ftyp"
    for stranger in (
        httpx.get(bare),
        httpx.get(bare, params={"signature": "0" * 64}),
        httpx.get(bare, params={"signature": "é" * 64}),
        httpx.get(bare, headers={"Authorization": "Bearer sandbox-local-key"}),
        httpx.get(f"{relay.url}{SANDBOX}/files/other.mp4", params={"signature": parts.query[10:]}),
    ):
        assert stranger.status_code == 403, stranger.text
        assert stranger.json() == {"detail": "a signed link or the API key is needed"}
    with_key = httpx.get(bare, headers={"Authorization": f"Bearer {key}"})
    assert with_key.status_code == 200 and with_key.content == fetched.content


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    "header",
    [
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-port",
        b"x-forwarded-server",
        b"x-real-ip",
        b"via",
        b"true-client-ip",
        b"cf-connecting-ip",
        b"fastly-client-ip",
        b"x-cluster-client-ip",
        b"x-client-ip",
        b"x-original-forwarded-for",
        b"x-envoy-external-address",
        b"x-amzn-trace-id",
    ],
)
def test_any_header_a_proxy_adds_marks_a_relayed_request(header: bytes) -> None:
    assert asyncio.run(status_for(("127.0.0.1", 5000), [(header, b"203.0.113.9")])) == 404


@pytest.mark.sqlite_only
def test_the_relays_own_headers_pass() -> None:
    own = [
        (b"authorization", b"Bearer k"),
        (b"user-agent", b"Python/3.11 aiohttp/3.9"),
        (b"content-type", b"application/json"),
        (b"dreamrelay-instance", b"abc"),
        (b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        (b"x-request-id", b"r1"),
        (b"accept-encoding", b"gzip, deflate"),
    ]
    assert asyncio.run(status_for(("127.0.0.1", 5000), own)) == 200


async def status_for(client: tuple[str, int], headers: list[tuple[bytes, bytes]]) -> int:
    sent: list[Message] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/files/x.mp4", "headers": headers, "client": client}
    await LoopbackOnly(inner)(scope, receive, send)
    return int(sent[0]["status"])
