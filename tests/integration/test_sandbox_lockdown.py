"""Issue 12 item 1: the built-in sandbox opens no door, and media from any upstream goes through URL safety.

Black-box over HTTP against a real DreamRelay on loopback; an "attacker" server on another loopback port
counts every request it gets, so "never fetched" is something a test can see.
"""

from __future__ import annotations

import asyncio
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.types import Message, Receive, Scope, Send

from dreamrelay.local_secrets import ensure_sandbox_key, sandbox_key_path
from dreamrelay.runtime import Runtime
from dreamrelay.sandbox.app import LoopbackOnly
from dreamrelay.settings import Settings
from dreamrelay.store.schema import accounts, ledger, tasks
from tests.conftest import Relay, make_settings, start_relay
from tests.support.media import picture
from tests.support.upstreams import FakeRelay, running, small_video

pytestmark = pytest.mark.both_stores

SANDBOX = "/sandbox/dream-machine/v1"


class Attacker:
    """An HTTP server on loopback serving a real MP4 and PNG to whoever asks, counting every request."""

    def __init__(self, video: bytes) -> None:
        self.video = video
        self.hits: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        self.hits.append(f"{scope['method']} {scope['path']}")
        body, kind = (
            (self.video, b"video/mp4") if scope["path"].endswith(".mp4") else (picture(64, 64), b"image/png")
        )
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return small_video(tmp_path_factory.mktemp("video") / "v.mp4")


@pytest.fixture
def attacker(video: bytes) -> Iterator[tuple[str, Attacker]]:
    server = Attacker(video)
    with running(server) as url:
        yield url, server


def sandbox_client(relay: Relay, key: str) -> httpx.Client:
    return httpx.Client(base_url=relay.url + SANDBOX, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def task_row(settings: Settings, task_id: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        async with Runtime.from_settings(settings) as rt, rt.db.reader() as conn:
            row = (await conn.execute(select(tasks).where(tasks.c.id == task_id))).one()
            return dict(row._mapping)

    return asyncio.run(read())


def money(settings: Settings, account: str) -> tuple[int, list[str]]:
    """(balance, kinds of the account's ledger rows in order)."""

    async def read() -> tuple[int, list[str]]:
        async with Runtime.from_settings(settings) as rt, rt.db.reader() as conn:
            row = (await conn.execute(select(accounts).where(accounts.c.name == account))).one()
            kinds = await conn.execute(
                select(ledger.c.kind).where(ledger.c.account_id == row.id).order_by(ledger.c.id)
            )
            return int(row.balance), [k for (k,) in kinds]

    return asyncio.run(read())


def test_the_sandbox_key_is_random_per_data_directory_and_kept_owner_only(tmp_path: Path) -> None:
    first = ensure_sandbox_key(Settings(data_dir=tmp_path / "a"))
    again = ensure_sandbox_key(Settings(data_dir=tmp_path / "a"))
    other = ensure_sandbox_key(Settings(data_dir=tmp_path / "b"))
    assert first == again != other
    assert first.startswith("drs-") and len(first) > 40 and first != "sandbox-local-key"
    path = sandbox_key_path(Settings(data_dir=tmp_path / "a"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_sandbox_key(Settings(data_dir=tmp_path / "a", sandbox_key="chosen")) == "chosen"


@pytest.mark.sqlite_only
def test_the_published_default_key_opens_nothing_and_lists_carry_no_callback_token(tmp_path: Path) -> None:
    with start_relay(make_settings(tmp_path, sandbox_queued_seconds=60)) as relay:
        with relay.client() as customer:
            created = customer.post(
                "/luma/generations", json={"user_prompt": "a secret prompt", "resolution": "540p"}
            )
        assert created.status_code == 200, created.text
        token = task_row(relay.settings, created.json()["id"])["upstream_token"]
        assert token
        with sandbox_client(relay, "sandbox-local-key") as stranger:
            assert stranger.get("/generations").status_code == 401
            assert stranger.get("/ping").status_code == 401
        with sandbox_client(relay, ensure_sandbox_key(relay.settings)) as insider:
            listed = insider.get("/generations")
            assert listed.status_code == 200
            generation = listed.json()["generations"][0]
            assert generation["request"]["prompt"] == "a secret prompt"
            assert "callback_url" not in generation["request"]
            assert token not in listed.text and "/upstream/callbacks/" not in listed.text
            one = insider.get(f"/generations/{generation['id']}")
            assert one.status_code == 200 and token not in one.text
            # Relayed through a proxy on this host: nothing here.
            proxied = insider.get("/generations", headers={"X-Forwarded-For": "203.0.113.9"})
            assert proxied.status_code == 404


@pytest.mark.sqlite_only
def test_requests_from_another_machine_find_no_sandbox() -> None:
    """The mount's guard, given the scope uvicorn builds for a remote peer (or a trusted proxy's client)."""
    reached: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["client"][0])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def call(
        client: tuple[str, int] | None,
        headers: list[tuple[bytes, bytes]],
        server: tuple[str, int] = ("127.0.0.1", 8000),
    ) -> int:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        scope = {
            "type": "http",
            "method": "GET",
            "path": "/ping",
            "headers": headers,
            "client": client,
            "server": server,
        }
        await LoopbackOnly(inner)(scope, receive, send)
        return int(sent[0]["status"])

    assert asyncio.run(call(("198.51.100.7", 5000), [])) == 404
    assert asyncio.run(call(("10.0.0.8", 5000), [])) == 404
    assert asyncio.run(call(None, [])) == 404
    assert asyncio.run(call(("127.0.0.1", 5000), [(b"forwarded", b"for=198.51.100.7")])) == 404
    assert asyncio.run(call(("127.0.0.1", 5000), [])) == 200
    assert asyncio.run(call(("::1", 5000), [])) == 200
    # `serve --host <LAN address>`: the relay's own calls come from the address they were accepted on.
    lan = ("10.0.0.5", 8000)
    assert asyncio.run(call(("10.0.0.5", 41000), [], lan)) == 200
    assert asyncio.run(call(("::ffff:10.0.0.5", 41000), [], lan)) == 200
    assert asyncio.run(call(("10.0.0.8", 41000), [], lan)) == 404  # another host of that network
    assert asyncio.run(call(("10.0.0.5", 41000), [(b"x-real-ip", b"10.0.0.8")], lan)) == 404
    assert reached == ["127.0.0.1", "::1", "10.0.0.5", "::ffff:10.0.0.5"]


def test_a_forged_completion_pointing_at_loopback_is_never_fetched_nor_charged(
    tmp_path: Path, attacker: tuple[str, Attacker]
) -> None:
    """The attack of issue 12: with a task's callback token, report it completed with a video on loopback."""
    attacker_url, server = attacker
    with start_relay(make_settings(tmp_path, sandbox_queued_seconds=60)) as relay:
        with relay.client() as customer:
            created = customer.post("/luma/generations", json={"user_prompt": "a boat", "resolution": "540p"})
            assert created.status_code == 200, created.text
            task_id = created.json()["id"]
            row = task_row(relay.settings, task_id)
            held = money(relay.settings, "demo")
            assert held[1][-1] == "hold"
            forged = {
                "id": row["upstream_id"],
                "state": "completed",
                "generation_type": "video",
                "assets": {"video": f"{attacker_url}/evil.mp4", "image": f"{attacker_url}/evil.jpg"},
            }
            for video_url in (f"{attacker_url}/evil.mp4", f"{relay.url}/media/tasks/{task_id}/video.mp4"):
                forged["assets"]["video"] = video_url
                answer = httpx.post(
                    f"{relay.url}/upstream/callbacks/{task_id}/{row['upstream_token']}",
                    json=forged,
                    timeout=10,
                )
                assert answer.status_code == 200, answer.text
            time.sleep(1.5)  # the background apply has run (and refused both)
            task = customer.get(f"/luma/generations/{task_id}").json()
        assert server.hits == []
        assert task["state"] in ("pending", "processing") and task["video"] is None
        assert money(relay.settings, "demo") == held  # nothing captured


def test_the_sandbox_fetches_and_calls_back_only_the_relay(
    tmp_path: Path, attacker: tuple[str, Attacker]
) -> None:
    """Keyframes and callbacks pointing at other loopback ports: never contacted, and the failure
    reads the same for an open port and a closed one."""
    attacker_url, server = attacker
    closed = "http://127.0.0.1:9"
    with start_relay(make_settings(tmp_path)) as relay:
        reasons = []
        with sandbox_client(relay, ensure_sandbox_key(relay.settings)) as insider:
            for base in (attacker_url, closed):
                body = {
                    "prompt": "probe",
                    "resolution": "540p",
                    "aspect_ratio": "1:1",
                    "keyframes": {"frame0": {"type": "image", "url": f"{base}/k.png"}},
                    "callback_url": f"{base}/hook",
                }
                created = insider.post("/generations", json=body)
                assert created.status_code == 201, created.text
                deadline = time.monotonic() + 30
                while (done := insider.get(f"/generations/{created.json()['id']}").json())["state"] not in (
                    "completed",
                    "failed",
                ):
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                reasons.append(done["failure_reason"])
        time.sleep(0.5)  # callbacks of the last changes would have been sent by now
    assert server.hits == []
    assert reasons[0] == reasons[1] == "rendering failed: keyframe image could not be fetched"


@pytest.mark.sqlite_only
def test_media_of_a_channel_on_a_private_address_needs_the_operators_allowance(
    tmp_path: Path, video: bytes
) -> None:
    """Any upstream, not only the sandbox: its finished video on a private address other than its own
    origin is refused (the task fails at once, the operator's reason naming media_networks) until the
    channel names that network in media_networks; then a task completes with the video copied."""
    elsewhere = FakeRelay("ok", video)
    with running(elsewhere) as media_url:
        upstream = FakeRelay("ok", video, video_origin=media_url)  # its media on another listener
        with (
            running(upstream) as upstream_url,
            start_relay(make_settings(tmp_path, poll_error_base_seconds=0.1)) as relay,
        ):
            with relay.admin() as admin:
                assert admin.patch("/admin/channels/sandbox", json={"enabled": False}).status_code == 200
                added = admin.post(
                    "/admin/channels",
                    json={"name": "lan", "kind": "relay", "base_url": upstream_url, "secret_key": "k"},
                )
                assert added.status_code == 201 and added.json()["media_networks"] == ""
                bad = admin.patch("/admin/channels/lan", json={"media_networks": "not-a-network"})
                assert bad.status_code == 400 and "media_networks" in bad.json()["error"]["message"]
            with relay.client() as customer:
                refused = wait_done(customer, submit_one(customer))
                assert refused["state"] == "failed"
                assert refused["failure_reason"] == "the upstream's result could not be fetched"
                assert elsewhere.count("GET", "/v.mp4") == 0
                with relay.admin() as admin:
                    shown = admin.get(f"/admin/tasks/{refused['id']}").json()
                    assert "media_networks" in str(shown) and "--media-networks" in str(shown)
                    allowed = admin.patch("/admin/channels/lan", json={"media_networks": "127.0.0.1/32"})
                    assert allowed.status_code == 200 and allowed.json()["media_networks"] == "127.0.0.1/32"
                task = wait_done(customer, submit_one(customer))
                assert task["state"] == "completed", task
            assert httpx.get(task["video"]["url"], timeout=10).content == video
        assert elsewhere.count("GET", "/v.mp4") >= 1


def submit_one(customer: httpx.Client) -> str:
    made = customer.post("/luma/generations", json={"user_prompt": "x", "resolution": "540p"})
    assert made.status_code == 200, made.text
    return str(made.json()["id"])


def wait_done(customer: httpx.Client, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (task := customer.get(f"/luma/generations/{task_id}").json())["state"] not in (
        "completed",
        "failed",
    ):
        assert time.monotonic() < deadline, task
        time.sleep(0.1)
    found: dict[str, Any] = task
    return found
