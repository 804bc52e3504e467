"""A real `luma-agents` channel: DreamRelay follows generations on a separate sandbox's Agents API.

The sandbox sits behind a counting proxy, so the test sees every upstream request, and its own state
shows what upstream was sent (user_id). Expired output links fail the task and release its hold.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dreamrelay.sandbox.agents import AgentsSandbox
from dreamrelay.sandbox.app import create_sandbox_app
from dreamrelay.sandbox.core import SandboxConfig
from tests.conftest import Relay, make_settings, start_relay
from tests.support.live_server import live_server
from tests.support.media import decode_mp4
from tests.support.upstreams import CountingProxy, running

pytestmark = pytest.mark.both_stores

KEY = "agents-upstream-key"


@dataclass
class Setup:
    relay: Relay
    proxy: CountingProxy
    upstream: AgentsSandbox


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    config = SandboxConfig(
        data_dir=tmp_path / "upstream", api_key=KEY, queued_seconds=0.0, dreaming_seconds=0.0
    )
    app = create_sandbox_app(config)
    with live_server(app) as upstream_url:
        proxy = CountingProxy(upstream_url)
        with running(proxy) as proxy_url, start_relay(make_settings(tmp_path / "relay")) as relay:
            with relay.admin() as admin:
                assert admin.patch("/admin/channels/sandbox", json={"enabled": False}).status_code == 200
                made = admin.post(
                    "/admin/channels",
                    json={
                        "name": "luma",
                        "kind": "luma-agents",
                        "base_url": proxy_url + "/agents/v1",
                        "secret_key": KEY,
                        # Outputs are copied through netguard: this loopback upstream must be allowed.
                        "media_networks": "127.0.0.0/8",
                    },
                )
                assert made.status_code == 201, made.text
                probe = admin.post("/admin/channels/luma/test")
                assert probe.status_code == 200 and probe.json()["ok"], probe.text
            yield Setup(relay, proxy, app.state.agents)


def balance(relay: Relay) -> int:
    with relay.admin() as admin:
        return int(admin.get("/admin/accounts/demo").json()["balance"])


def admin_task(relay: Relay, task_id: str) -> dict[str, Any]:
    with relay.admin() as admin:
        return dict(admin.get(f"/admin/tasks/{task_id}").json())


def wait(client: httpx.Client, path: str, done: tuple[str, ...], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(path).json()
        if body["state"] in done:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{path} did not finish")


def test_own_format_ray32_goes_through_the_agents_channel_and_is_copied_and_probed(setup: Setup) -> None:
    relay = setup.relay
    before = balance(relay)
    with relay.client() as client:
        created = client.post(
            "/luma/generations",
            json={
                "user_prompt": "a lighthouse",
                "model_name": "ray-3.2",
                "resolution": "360p",
                "duration": "10s",
            },
        )
        assert created.status_code == 200, created.text
        task = wait(client, f"/luma/generations/{created.json()['id']}", ("completed", "failed"))
        assert task["state"] == "completed", task
        video_url = task["video"]["url"]
        assert video_url.startswith(relay.url + "/media/tasks/")  # our copy, not upstream's presigned link
        clip = decode_mp4(httpx.get(video_url).content)
    assert (clip.codec, clip.width, clip.height, clip.frames) == ("h264", 640, 360, 241)
    media = admin_task(relay, created.json()["id"])["media"]
    assert (media["video"]["frames"], media["video"]["codec"], media["video"]["width"]) == (241, "h264", 640)
    assert balance(relay) == before - 30  # ray-3.2 360p 10s
    (sent,) = [r.request for r in setup.upstream.records.values()]
    assert sent["type"] == "video" and sent["video"]["duration"] == "10s"
    assert sent["user_id"] and sent["user_id"].startswith("dr-") and "demo" not in sent["user_id"]
    # One submit, then polls until completed (the output is fetched from its presigned URL directly).
    assert setup.proxy.count("POST", "/agents/v1/generations") == 1
    assert 1 <= setup.proxy.count("GET", "/agents/v1/generations/") <= 10


@pytest.mark.sqlite_only
def test_agents_format_images_and_edits_through_the_channel(setup: Setup) -> None:
    relay = setup.relay
    with relay.client() as client:
        made = client.post(
            "/agents/v1/generations", json={"prompt": "a fox", "type": "image", "output_format": "jpeg"}
        )
        assert made.status_code == 201, made.text
        image = wait(client, f"/agents/v1/generations/{made.json()['id']}", ("completed", "failed"))
        assert image["state"] == "completed" and image["output"][0]["url"].startswith(relay.url + "/media/")
        assert httpx.get(image["output"][0]["url"]).content[:3] == b"\xff\xd8\xff"
        media = admin_task(relay, image["id"])["media"]
        assert media["images"][0]["media_type"] == "image/jpeg" and media["images"][0]["width"] == 1024
        clip = client.post(
            "/agents/v1/generations",
            json={"prompt": "a fox runs", "type": "video", "video": {"resolution": "360p"}},
        )
        video = wait(client, f"/agents/v1/generations/{clip.json()['id']}", ("completed", "failed"))
        reframe = client.post(
            "/agents/v1/generations",
            json={
                "prompt": "square",
                "type": "video_reframe",
                "aspect_ratio": "1:1",
                "source": {"generation_id": video["id"]},
                "video": {"resolution": "360p"},
            },
        )
        assert reframe.status_code == 201, reframe.text
        done = wait(client, f"/agents/v1/generations/{reframe.json()['id']}", ("completed", "failed"))
        assert done["state"] == "completed", done
        reframed = decode_mp4(httpx.get(done["output"][0]["url"]).content)
    assert (reframed.width, reframed.height, reframed.frames) == (360, 360, 121)
    # Upstream chained by its own generation id (the relay's ids never leave the relay).
    upstream_sources = [r.request.get("source") for r in setup.upstream.records.values()]
    assert {
        "generation_id": admin_task(relay, video["id"])["upstream_id"],
        "media_type": None,
    } in upstream_sources


def test_an_output_link_already_expired_fails_the_task_and_releases_its_hold(setup: Setup) -> None:
    relay = setup.relay
    before = balance(relay)
    with relay.client() as client:
        made = client.post(
            "/agents/v1/generations",
            json={"prompt": "late [sandbox:expired]", "type": "video", "video": {"resolution": "360p"}},
        )
        assert made.status_code == 201
        done = wait(client, f"/agents/v1/generations/{made.json()['id']}", ("completed", "failed"))
    assert (done["state"], done["failure_code"], done["output"]) == ("failed", "output_not_found", None)
    assert "expired" in done["failure_reason"]
    assert balance(relay) == before


@pytest.mark.sqlite_only
@pytest.mark.parametrize("code", ["content_moderated", "budget_exhausted", "corrupt_input"])
def test_failure_codes_reach_the_customer_and_refund(setup: Setup, code: str) -> None:
    relay = setup.relay
    before = balance(relay)
    with relay.client() as client:
        made = client.post(
            "/agents/v1/generations", json={"prompt": f"x [sandbox:fail:{code}]", "type": "image"}
        )
        done = wait(client, f"/agents/v1/generations/{made.json()['id']}", ("completed", "failed"))
    assert (done["state"], done["failure_code"]) == ("failed", code)
    assert balance(relay) == before


@pytest.mark.sqlite_only
def test_official_format_reaches_ray32_and_extends_through_the_channel(setup: Setup) -> None:
    relay = setup.relay
    with relay.client() as client:
        body = {"model": "ray-3.2", "prompt": "a harbour", "resolution": "360p", "duration": "5s"}
        created = client.post("/dream-machine/v1/generations", json=body)
        assert created.status_code == 201, created.text
        first = wait(client, f"/dream-machine/v1/generations/{created.json()['id']}", ("completed", "failed"))
        assert (first["state"], first["model"]) == ("completed", "ray-3.2")
        extend = {**body, "keyframes": {"frame0": {"type": "generation", "id": first["id"]}}}
        second = client.post("/dream-machine/v1/generations", json=extend)
        assert second.status_code == 201, second.text
        done = wait(client, f"/dream-machine/v1/generations/{second.json()['id']}", ("completed", "failed"))
        assert done["state"] == "completed", done
        refused = client.post("/dream-machine/v1/generations", json={**body, "aspect_ratio": "9:21"})
        assert refused.status_code == 400
    parent_upstream = admin_task(relay, first["id"])["upstream_id"]
    frames = [r.request["video"].get("start_frame") for r in setup.upstream.records.values()]
    assert {"generation_id": parent_upstream, "media_type": None} in frames
