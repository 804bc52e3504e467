"""The sandbox's Kling video API over loopback HTTP: 5 s and 10 s H.264 clips, std (720 lines) and pro
(1080 lines), image2video starting on its image and ending on image_tail's, Kling's envelope, its list,
its callback (the bare task object), and its refusals."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from PIL import Image

from dreamrelay.media.probe import VideoProbe, probe_video_bytes
from dreamrelay.netguard import URLPolicy, parse_networks
from dreamrelay.sandbox.app import create_sandbox_app
from dreamrelay.sandbox.core import SandboxConfig
from tests.support.live_server import live_server
from tests.support.media import decode_mp4, mean_abs_diff, picture
from tests.support.receiver import running_receiver

KEY = "k"


@pytest.fixture
def kling(tmp_path: Path) -> Iterator[httpx.Client]:
    config = SandboxConfig(
        data_dir=tmp_path,
        api_key=KEY,
        queued_seconds=0.0,
        dreaming_seconds=0.0,
        url_policy=URLPolicy(allow_networks=parse_networks("127.0.0.0/8")),
    )
    with live_server(create_sandbox_app(config)) as url:
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=url + "/kling", headers=headers, timeout=60) as client:
            yield client


def created(client: httpx.Client, word: str, body: dict[str, Any]) -> str:
    answer = client.post(f"/v1/videos/{word}", json=body)
    assert answer.status_code == 200, answer.text
    envelope = answer.json()
    assert (envelope["code"], envelope["message"]) == (0, "SUCCEED")
    assert envelope["data"]["task_status"] == "submitted"
    return str(envelope["data"]["task_id"])


def finished(client: httpx.Client, word: str, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        data: dict[str, Any] = client.get(f"/v1/videos/{word}/{task_id}").json()["data"]
        if data["task_status"] in ("succeed", "failed"):
            return data
        time.sleep(0.05)
    raise AssertionError("task did not finish")


def clip_of(data: dict[str, Any]) -> Any:
    assert data["task_status"] == "succeed", data
    [video] = data["task_result"]["videos"]
    return decode_mp4(httpx.get(video["url"], timeout=60).content), video


def test_text2video_std_10s_and_pro_5s(kling: httpx.Client) -> None:
    std = created(kling, "text2video", {"prompt": "a paper boat", "aspect_ratio": "9:16", "duration": "10"})
    pro = created(kling, "text2video", {"prompt": "a lighthouse", "mode": "pro", "aspect_ratio": "1:1"})
    facts, video = probed(finished(kling, "text2video", std))
    assert (facts.codec, facts.width, facts.height, facts.frames) == ("h264", 720, 1280, 241)
    assert 10.0 <= facts.duration <= 10.1 and video["duration"] == "10.0"
    facts, video = probed(finished(kling, "text2video", pro))
    assert (facts.codec, facts.width, facts.height, facts.frames) == ("h264", 1080, 1080, 121)
    assert 5.0 <= facts.duration <= 5.1 and video["duration"] == "5.0"


def probed(data: dict[str, Any]) -> tuple[VideoProbe, dict[str, Any]]:
    assert data["task_status"] == "succeed", data
    [video] = data["task_result"]["videos"]
    return probe_video_bytes(httpx.get(video["url"], timeout=60).content), video


def test_image2video_starts_on_the_image_and_ends_on_the_tail(kling: httpx.Client) -> None:
    first, tail = picture(960, 960, seed=1), picture(960, 960, seed=2)
    body = {
        "prompt": "",
        "image": base64.b64encode(first).decode(),  # raw base64, as Dooy's client sends it
        "image_tail": base64.b64encode(tail).decode(),
        "aspect_ratio": "16:9",  # not used: the image sets the shape
    }
    clip, _video = clip_of(finished(kling, "image2video", created(kling, "image2video", body)))
    assert (clip.width, clip.height, clip.frames) == (720, 720, 121)
    small = [np.asarray(Image.open(io.BytesIO(d)).convert("RGB").resize((720, 720))) for d in (first, tail)]
    assert mean_abs_diff(clip.first, small[0]) < 12
    assert mean_abs_diff(clip.last, small[1]) < 12


def test_list_markers_refusals_and_auth(kling: httpx.Client) -> None:
    failing = created(kling, "text2video", {"prompt": "x [sandbox:fail]"})
    data = finished(kling, "text2video", failing)
    assert data["task_status"] == "failed" and "task_result" not in data and data["task_status_msg"]
    page = kling.get("/v1/videos/text2video", params={"pageNum": 1, "pageSize": 30}).json()
    assert [d["task_id"] for d in page["data"]] == [failing]
    assert kling.get("/v1/videos/image2video").json()["data"] == []
    assert kling.get(f"/v1/videos/image2video/{failing}").status_code == 404
    for word, body in (
        ("text2video", {"prompt": "x", "duration": "7"}),
        ("text2video", {"prompt": "x", "mode": "max"}),
        ("text2video", {"prompt": ""}),
        ("image2video", {"prompt": "x", "image": ""}),
        ("text2video", {"prompt": "x [sandbox:reject]"}),
    ):
        answer = kling.post(f"/v1/videos/{word}", json=body)
        assert answer.status_code == 400 and answer.json()["code"] == 1201, (body, answer.text)
    wrong = {"Authorization": "Bearer no"}
    assert kling.post("/v1/videos/text2video", json={"prompt": "x"}, headers=wrong).status_code == 401


def test_callback_posts_the_bare_task_object(kling: httpx.Client) -> None:
    with running_receiver() as receiver:
        task_id = created(kling, "text2video", {"prompt": "a kite", "callback_url": receiver.url + "/hook"})
        finished(kling, "text2video", task_id)
        bodies = [orjson.loads(r.body) for r in receiver.wait_for(2)]
    assert [body["task_status"] for body in bodies] == ["processing", "succeed"], bodies
    last = bodies[-1]
    assert last["task_id"] == task_id and last["task_result"]["videos"][0]["url"].startswith("http")
