"""Kling video through `kling` channels (both stores): one against the sandbox's Kling API, Kling's
own callback body moving a task, and a chain of two DreamRelays, relay a's `kling` channel
speaking Kling's API to relay b's /kling; and Kling video models through /v1/videos."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dreamrelay.local_secrets import ensure_sandbox_key
from dreamrelay.media.probe import probe_video_bytes
from dreamrelay.upstreams.kling import jwt_for
from tests.conftest import Relay, make_settings, start_relay
from tests.integration.test_channels import upstream_token

pytestmark = pytest.mark.both_stores

BASE = "/kling/v1/videos"


def finished(client: httpx.Client, word: str, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        data: dict[str, Any] = client.get(f"{BASE}/{word}/{task_id}").json()["data"]
        if data["task_status"] in ("succeed", "failed"):
            return data
        time.sleep(0.1)
    raise AssertionError("the task did not finish")


def only_channel(relay: Relay, **channel: Any) -> None:
    with relay.admin() as admin:
        assert admin.patch("/admin/channels/sandbox", json={"enabled": False}).status_code == 200
        made = admin.post("/admin/channels", json={"name": "kling", "kind": "kling", **channel})
        assert made.status_code == 201, made.text


def test_a_kling_channel_against_the_sandbox(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, allow_private_urls="127.0.0.0/8")
    with start_relay(settings) as relay:
        only_channel(relay, base_url=relay.url + "/sandbox/kling", secret_key=ensure_sandbox_key(settings))
        with relay.client() as client:
            body = {"model_name": "kling-v1-5", "prompt": "a lantern", "mode": "std", "aspect_ratio": "9:16"}
            created = client.post(f"{BASE}/text2video", json=body)
            assert created.status_code == 200, created.text
            data = finished(client, "text2video", created.json()["data"]["task_id"])
            assert data["task_status"] == "succeed", data
            facts = probe_video_bytes(client.get(data["task_result"]["videos"][0]["url"]).content)
        with relay.admin() as admin:
            info = admin.get(f"/admin/tasks/{data['task_id']}").json()
    assert (facts.codec, facts.width, facts.height, facts.frames) == ("h264", 720, 1280, 121)
    assert info["channel"] == "kling" and info["upstream_id"].startswith("text2video/")
    assert info["upstream_state"] == "succeed"


def test_klings_callback_moves_the_task_and_a_report_of_another_task_is_refused(tmp_path: Path) -> None:
    """The sandbox keeps the task queued; Kling's callback body (the bare task object) sent to our URL
    with the task's token moves it, read by the kind's report reader; another task id is a 400."""
    settings = make_settings(tmp_path, allow_private_urls="127.0.0.0/8", sandbox_queued_seconds=600)
    with start_relay(settings) as relay:
        only_channel(relay, base_url=relay.url + "/sandbox/kling", secret_key=ensure_sandbox_key(settings))
        with relay.client() as client:
            created = client.post(f"{BASE}/text2video", json={"prompt": "a lantern"}).json()["data"]
        token = asyncio.run(upstream_token(relay, created["task_id"]))
        with relay.admin() as admin:
            upstream_id = admin.get(f"/admin/tasks/{created['task_id']}").json()["upstream_id"]
        hook = f"{relay.url}/upstream/callbacks/{created['task_id']}/{token}"
        report = {
            "task_id": upstream_id.partition("/")[2],
            "task_status": "processing",
            "task_status_msg": "",
        }
        other = httpx.post(hook, json={**report, "task_id": "someone-else"})
        assert other.status_code == 400
        moved = httpx.post(hook, json=report)
        assert moved.status_code == 200 and moved.json() == {"accepted": True}, moved.text
        with relay.client() as client:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                status = client.get(f"{BASE}/text2video/{created['task_id']}").json()["data"]["task_status"]
                if status == "processing":
                    break
                time.sleep(0.1)
        assert status == "processing"


def test_a_chain_of_two_relays_over_kling_video(tmp_path: Path) -> None:
    """Relay a's `kling` channel is relay b's /kling (b's key as the Bearer token): image2video made at
    b's sandbox, called back to a, copied to a; the customer's media is a's."""
    with start_relay(make_settings(tmp_path / "b", allow_private_urls="127.0.0.0/8")) as b:
        key_at_b = b.new_key("relay-a", balance=100_000)
        with start_relay(make_settings(tmp_path / "a", allow_private_urls="127.0.0.0/8")) as a:
            only_channel(a, base_url=b.url + "/kling", secret_key=key_at_b, media_networks="127.0.0.0/8")
            with a.client() as client:
                body = {
                    "model": "kling-v1-6",
                    "prompt": "",
                    "image": _png_b64(),
                    "image_tail": "",
                    "mode": "pro",
                    "duration": "5",
                }
                created = client.post(f"{BASE}/image2video", json=body)
                assert created.status_code == 200, created.text
                data = finished(client, "image2video", created.json()["data"]["task_id"])
                assert data["task_status"] == "succeed", data
                url = data["task_result"]["videos"][0]["url"]
                facts = probe_video_bytes(client.get(url).content)
            with a.admin() as admin:
                info = admin.get(f"/admin/tasks/{data['task_id']}").json()
        with b.client(key_at_b) as at_b:
            word, _, upstream_id = info["upstream_id"].partition("/")
            upstream = at_b.get(f"{BASE}/{word}/{upstream_id}").json()["data"]
    assert url.startswith(f"{a.url}/media/")
    assert (facts.codec, facts.width, facts.height, facts.frames) == ("h264", 1080, 1080, 121)
    assert info["channel"] == "kling" and word == "image2video"
    assert upstream["task_status"] == "succeed" and upstream["final_unit_deduction"] == "140"


def _png_b64() -> str:
    import base64

    from tests.support.media import picture

    return base64.b64encode(picture(512, 512, seed=9)).decode()


def test_kling_video_models_through_v1_videos(tmp_path: Path) -> None:
    with start_relay(make_settings(tmp_path)) as relay, relay.client() as client:
        created = client.post(
            "/v1/videos", json={"prompt": "a fox", "model": "kling-v2-1", "size": "1080x1920", "seconds": "5"}
        )
        assert created.status_code == 200, created.text
        video = created.json()
        assert (video["model"], video["size"], video["seconds"]) == ("kling-v2-1", "1080x1920", "5")
        for body, param in (
            ({"prompt": "x", "model": "kling-v2-1", "seconds": "8"}, "seconds"),
            ({"prompt": "x", "model": "kling-v2-1", "size": "1024x1024"}, "size"),
            ({"prompt": "x", "model": "kling-v2-1", "size": "540x960"}, "size"),
        ):
            refused = client.post("/v1/videos", json=body)
            assert refused.status_code == 400 and refused.json()["error"]["param"] == param, refused.text
        deadline = time.monotonic() + 120
        while video["status"] not in ("completed", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
            video = client.get(f"/v1/videos/{video['id']}").json()
        assert video["status"] == "completed", video
        facts = probe_video_bytes(client.get(f"/v1/videos/{video['id']}/content").content)
        kling = client.get(f"{BASE}/text2video/{video['id']}").json()["data"]
    assert (facts.width, facts.height, facts.frames) == (1080, 1920, 121)
    assert kling["task_status"] == "succeed" and kling["final_unit_deduction"] == "80"  # kling-v2-1 pro 5 s


def test_kling_access_keys_sign_a_jwt() -> None:
    import base64
    import hashlib
    import hmac

    import orjson

    token = jwt_for("ak-1", "sk-1", 1_700_000_000)
    header, claims, signature = token.split(".")

    def decoded(part: str) -> Any:
        return orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    assert decoded(header) == {"alg": "HS256", "typ": "JWT"}
    assert decoded(claims) == {"iss": "ak-1", "exp": 1_700_001_800, "nbf": 1_699_999_995}
    expected = hmac.new(b"sk-1", f"{header}.{claims}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)) == expected
