"""Kling video over HTTP in Kling's exact shapes (/kling/v1/videos), on the default set-up (the sandbox
channel): text2video and image2video as Dooy's web client (src/api/kling.ts, kgInputVideo.vue) sends
them and reads them, get under the task's path, list, errors as Dooy reads them, tenant isolation, and
billing by the clip delivered (hold, capture, release; `final_unit_deduction`)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from dreamrelay.http.schemas.kling import KlingVideoEnvelope, KlingVideoPage
from dreamrelay.media.probe import probe_video_bytes
from tests.conftest import Relay, make_settings, start_relay
from tests.integration.test_money import balance_and_ledger
from tests.support.media import decode_mp4, mean_abs_diff, open_jpeg, picture

pytestmark = pytest.mark.both_stores

BASE = "/kling/v1/videos"
STD_5S, STD_10S = 40, 80  # kling-v1-6 (migration 0016)
BALANCE = 1000


def dooy_body(**changes: Any) -> dict[str, Any]:
    """What kgInputVideo.vue posts: every field of its form, image and image_tail always (empty when
    none), `model` rather than `model_name`, duration as a string."""
    body = {
        "prompt": "a paper boat on a rainy street",
        "negative_prompt": "",
        "image": "",
        "image_tail": "",
        "aspect_ratio": "1:1",
        "mode": "std",
        "duration": "5",
        "model": "kling-v1-6",
    }
    return body | changes


def dooy_headers(key: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}


def dooy_feed(client: httpx.Client, cat: str, task_id: str) -> dict[str, Any]:
    """klingFeed: GET …/{cat}/{id} until data.task_status is succeed or failed (Dooy waits 5.2 s)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        answer = client.get(f"{BASE}/{cat}/{task_id}")
        assert answer.status_code == 200, answer.text
        task: dict[str, Any] = answer.json()
        KlingVideoEnvelope.model_validate(task)
        assert task["data"]["task_id"] and task["request_id"]  # the key of Dooy's list rows
        if task["data"]["task_status"] in ("failed", "succeed"):
            return task
        assert task["data"]["task_status"] in ("submitted", "processing")
        time.sleep(0.1)
    raise AssertionError("the task did not finish")


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    with start_relay(make_settings(tmp_path)) as running:
        yield running


def test_text2video_as_dooy_sends_and_reads_it(relay: Relay) -> None:
    key = relay.new_key("dooy", balance=BALANCE)
    with httpx.Client(base_url=relay.url, headers=dooy_headers(key), timeout=120) as client:
        body = dooy_body(duration="10", camera_control={"type": "down_back"})
        answer = client.post(f"{BASE}/text2video", json=body)
        assert answer.status_code == 200, answer.text
        created = answer.json()
        assert list(created) == ["code", "message", "request_id", "data"]
        assert (created["code"], created["message"]) == (0, "SUCCEED")
        assert created["data"]["task_status"] == "submitted"
        task = dooy_feed(client, "text2video", created["data"]["task_id"])
        data = task["data"]
        assert data["task_status"] == "succeed", data
        assert list(data) == [
            "task_id", "task_status", "task_status_msg", "task_info", "created_at", "updated_at",
            "task_result", "final_unit_deduction",
        ]  # fmt: skip
        [video] = data["task_result"]["videos"]
        assert video["url"] == f"{relay.url}/media/tasks/{data['task_id']}/video.mp4"
        assert video["duration"] == "10.0" and data["final_unit_deduction"] == str(STD_10S)
        facts = probe_video_bytes(client.get(video["url"]).content)
        assert (facts.codec, facts.width, facts.height, facts.frames) == ("h264", 720, 720, 241)
        assert 10.0 <= facts.duration <= 10.1
        # The same task through the own format and /v1/videos.
        own = client.get(f"/luma/generations/{data['task_id']}").json()
        assert own["state"] == "completed" and own["artifact"]["video"]["url"] == video["url"]
        openai = client.get(f"/v1/videos/{data['task_id']}").json()
        assert (openai["status"], openai["seconds"], openai["size"]) == ("completed", "10", "720x720")
        # Under the other path it is not found; the list shows it under its own.
        assert client.get(f"{BASE}/image2video/{data['task_id']}").status_code == 404
        page = client.get(f"{BASE}/text2video", params={"pageNum": 1, "pageSize": 30}).json()
        KlingVideoPage.model_validate(page)
        assert [t["task_id"] for t in page["data"]] == [data["task_id"]]
        assert client.get(f"{BASE}/image2video").json()["data"] == []
    balance, rows = balance_and_ledger(relay.settings, "dooy")
    assert balance == BALANCE - STD_10S
    assert [(r["kind"], r["amount"]) for r in rows][-2:] == [("hold", -STD_10S), ("capture", 0)]


def test_image2video_starts_on_the_image_and_ends_on_the_tail(relay: Relay) -> None:
    key = relay.new_key("dooy", balance=BALANCE)
    first, tail = picture(1280, 720, seed=4), picture(1280, 720, seed=5)
    # clearImageBase64: the data: prefix goes, the raw base64 is sent.
    body = dooy_body(image=base64.b64encode(first).decode(), image_tail=base64.b64encode(tail).decode())
    with httpx.Client(base_url=relay.url, headers=dooy_headers(key), timeout=120) as client:
        answer = client.post(f"{BASE}/image2video", json=body)
        assert answer.status_code == 200, answer.text
        task = dooy_feed(client, "image2video", answer.json()["data"]["task_id"])
        assert task["data"]["task_status"] == "succeed", task
        clip = decode_mp4(client.get(task["data"]["task_result"]["videos"][0]["url"]).content)
        thumbnail = client.get(f"/luma/generations/{task['data']['task_id']}").json()["artifact"]["thumbnail"]
        open_jpeg(client.get(thumbnail["url"]).content)
    assert (clip.codec, clip.width, clip.height, clip.frames) == ("h264", 1280, 720, 121)  # the image's 16:9
    expected = [np.asarray(open_jpeg_or_png(d)) for d in (first, tail)]
    assert mean_abs_diff(clip.first, expected[0]) < 12
    assert mean_abs_diff(clip.last, expected[1]) < 12


def open_jpeg_or_png(data: bytes) -> Any:
    import io

    from PIL import Image

    return Image.open(io.BytesIO(data)).convert("RGB")


def test_a_shorter_clip_is_charged_as_what_it_is(relay: Relay) -> None:
    key = relay.new_key("short", balance=BALANCE)
    with httpx.Client(base_url=relay.url, headers=dooy_headers(key), timeout=120) as client:
        body = dooy_body(prompt="a kite [sandbox:short]", duration="10")
        created = client.post(f"{BASE}/text2video", json=body).json()
        task = dooy_feed(client, "text2video", created["data"]["task_id"])
    data = task["data"]
    assert data["task_result"]["videos"][0]["duration"] == "5.0"
    assert data["final_unit_deduction"] == str(STD_5S)
    balance, rows = balance_and_ledger(relay.settings, "short")
    assert balance == BALANCE - STD_5S
    assert [(r["kind"], r["amount"]) for r in rows][-3:] == [
        ("hold", -STD_10S),
        ("capture", 0),
        ("release", 40),
    ]


def test_failure_releases_everything_and_errors_read_as_dooy_reads_them(relay: Relay) -> None:
    key = relay.new_key("fails", balance=BALANCE)
    with httpx.Client(base_url=relay.url, headers=dooy_headers(key), timeout=120) as client:
        created = client.post(f"{BASE}/text2video", json=dooy_body(prompt="x [sandbox:fail]")).json()
        task = dooy_feed(client, "text2video", created["data"]["task_id"])
        assert task["data"]["task_status"] == "failed" and task["data"]["task_status_msg"]
        assert task["data"]["task_result"] == {"videos": []} and task["data"]["final_unit_deduction"] == "0"
        for path, body, words in (
            ("text2video", dooy_body(duration="7"), "duration"),
            ("text2video", dooy_body(mode="max"), "mode"),
            ("text2video", dooy_body(model="kling-v9"), "model_name"),
            ("text2video", dooy_body(prompt=""), "prompt"),
            ("image2video", dooy_body(), "image"),
            ("text2video", dooy_body(image_tail="aGVsbG8="), "image_tail"),
            ("text2video", dooy_body(camera_control={"type": "simple"}), "camera_control"),
            ("image2video", dooy_body(image="bm90IGFuIGltYWdl"), "image"),
            ("text2video", dooy_body(prompt="x" * 2501), "prompt"),
        ):
            answer = client.post(f"{BASE}/{path}", json=body)
            assert answer.status_code == 400, (body, answer.text)
            assert words in answer.json()["error"]["message"], answer.text  # what Dooy shows
        assert client.get(f"{BASE}/text2video", params={"pageNum": "x"}).status_code == 400
        assert client.get(f"{BASE}/text2video", params={"pageSize": 501}).status_code == 400
        assert client.get(f"{BASE}/sideways/abc").status_code == 400  # the path word is checked
    balance, _rows = balance_and_ledger(relay.settings, "fails")
    assert balance == BALANCE


def test_auth_and_tenant_isolation(relay: Relay) -> None:
    mine, theirs = relay.new_key("mine", balance=BALANCE), relay.new_key("theirs", balance=BALANCE)
    with httpx.Client(base_url=relay.url, timeout=60) as client:
        assert client.post(f"{BASE}/text2video", json=dooy_body()).status_code == 401
        assert client.get(f"{BASE}/text2video", headers=dooy_headers("dr-nope")).status_code == 401
        created = client.post(f"{BASE}/text2video", json=dooy_body(), headers=dooy_headers(mine)).json()
        task_id = created["data"]["task_id"]
        assert client.get(f"{BASE}/text2video/{task_id}", headers=dooy_headers(theirs)).status_code == 404
        assert client.get(f"{BASE}/text2video", headers=dooy_headers(theirs)).json()["data"] == []
        assert client.get(f"{BASE}/text2video/{task_id}", headers=dooy_headers(mine)).status_code == 200
