"""The sandbox's Luma Agents API over loopback HTTP: honest Ray 3.2 clips and Uni-1 images, expiring
output URLs, and a prompt marker for every failure code."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from dreamrelay.domain.catalog import AGENTS_FAILURE_CODES
from dreamrelay.sandbox.app import create_sandbox_app
from dreamrelay.sandbox.core import SandboxConfig
from tests.support.live_server import live_server
from tests.support.media import decode_mp4, mean_abs_diff, picture

KEY = "k"
DRAFT = {"resolution": "360p"}


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[httpx.Client]:
    config = SandboxConfig(data_dir=tmp_path, api_key=KEY, queued_seconds=0.0, dreaming_seconds=0.0)
    with live_server(create_sandbox_app(config)) as url:
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=url + "/agents/v1", headers=headers, timeout=60) as client:
            yield client


def finished(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    created = client.post("/generations", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["x-api-version"] == "2026-04-01"
    assert created.json()["state"] == "queued"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        generation: dict[str, Any] = client.get(f"/generations/{created.json()['id']}").json()
        if generation["state"] in ("completed", "failed"):
            return generation
        time.sleep(0.05)
    raise AssertionError("generation did not finish")


def output(client: httpx.Client, generation: dict[str, Any]) -> httpx.Response:
    assert generation["state"] == "completed", generation
    response = httpx.get(generation["output"][0]["url"], timeout=30)  # presigned: no key
    assert response.status_code == 200
    return response


def test_text_to_video_is_ray32_at_24fps_121_and_241_frames(agents: httpx.Client) -> None:
    five = finished(agents, {"prompt": "a kite", "type": "video", "model": "ray-3.2", "video": DRAFT})
    assert list(five) == [
        "id",
        "created_at",
        "model",
        "state",
        "type",
        "failure_code",
        "failure_reason",
        "output",
    ]
    assert five["output"][0]["type"] == "video"
    clip = decode_mp4(output(agents, five).content)
    assert (clip.codec, clip.width, clip.height, clip.frames) == ("h264", 640, 360, 121)
    assert clip.duration == pytest.approx(121 / 24, abs=0.05)
    ten = finished(
        agents,
        {"prompt": "a kite", "type": "video", "video": {**DRAFT, "duration": "10s"}, "aspect_ratio": "9:16"},
    )
    clip = decode_mp4(output(agents, ten).content)
    assert (clip.width, clip.height, clip.frames) == (360, 640, 241)


def test_start_frame_and_keyframes_start_on_the_image(agents: httpx.Client) -> None:
    image = picture(640, 360, seed=3)
    data = {"data": base64.b64encode(image).decode(), "media_type": "image/png"}
    expected = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))
    by_start = finished(agents, {"prompt": "go", "type": "video", "video": {**DRAFT, "start_frame": data}})
    assert mean_abs_diff(decode_mp4(output(agents, by_start).content).first, expected) < 12
    by_keys = finished(
        agents,
        {"prompt": "go", "type": "video", "video": {**DRAFT, "keyframes": [data], "keyframe_indexes": [0]}},
    )
    assert mean_abs_diff(decode_mp4(output(agents, by_keys).content).first, expected) < 12


def test_extension_edit_and_reframe_start_from_the_source(agents: httpx.Client) -> None:
    source = finished(agents, {"prompt": "a red boat", "type": "video", "video": DRAFT})
    first = decode_mp4(output(agents, source).content)
    extended = finished(
        agents,
        {
            "prompt": "more",
            "type": "video",
            "video": {**DRAFT, "start_frame": {"generation_id": source["id"]}},
        },
    )
    assert mean_abs_diff(decode_mp4(output(agents, extended).content).first, first.last) < 12
    edited = finished(
        agents,
        {
            "prompt": "make it blue",
            "type": "video_edit",
            "source": {"generation_id": source["id"]},
            "video": {"resolution": "360p", "edit": {"strength": "adhere_1"}},
        },
    )
    edit = decode_mp4(output(agents, edited).content)
    assert (edit.width, edit.height, edit.frames) == (640, 360, 121)
    assert mean_abs_diff(edit.first, first.first) < 30  # mostly the source's own first frame
    reframed = finished(
        agents,
        {
            "prompt": "taller",
            "type": "video_reframe",
            "aspect_ratio": "9:16",
            "source": {"generation_id": source["id"]},
            "video": {
                "resolution": "360p",
                "source_position": {"x_norm": 0, "y_norm": 0, "w_norm": 1, "h_norm": 0.28125},
            },
        },
    )
    frame = decode_mp4(output(agents, reframed).content)
    assert (frame.width, frame.height, frame.frames) == (360, 640, 121)
    # The source (640×360 scaled to 360×180) sits at the top: its rows match the source, shrunk.
    shrunk = np.asarray(Image.fromarray(first.first).resize((360, 180)))
    assert mean_abs_diff(frame.first[:180], shrunk) < 15
    assert mean_abs_diff(frame.first[200:], np.asarray(Image.fromarray(first.first).resize((360, 440)))) > 15


def test_uni_images_are_png_or_jpeg_as_asked(agents: httpx.Client) -> None:
    png = finished(agents, {"prompt": "a fox", "type": "image", "aspect_ratio": "16:9"})
    assert png["model"] == "uni-1"
    data = output(agents, png).content
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(data)).size == (1360, 768)
    jpeg = finished(
        agents,
        {
            "prompt": "a fox",
            "type": "image_edit",
            "output_format": "jpeg",
            "source": {"generation_id": png["id"]},
        },
    )
    data = output(agents, jpeg).content
    assert data[:3] == b"\xff\xd8\xff"
    assert Image.open(io.BytesIO(data)).size == (1360, 768)


def test_output_urls_expire_and_answer_403(agents: httpx.Client) -> None:
    generation = finished(agents, {"prompt": "a fox [sandbox:expired]", "type": "image"})
    response = httpx.get(generation["output"][0]["url"])
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code>" in response.text and "expired" in response.text
    forged = generation["output"][0]["url"].replace("X-Amz-Expires=", "X-Amz-Expires=9")
    assert httpx.get(forged).status_code == 403


@pytest.mark.parametrize("code", AGENTS_FAILURE_CODES)
def test_every_failure_code_has_a_marker(agents: httpx.Client, code: str) -> None:
    generation = finished(agents, {"prompt": f"x [sandbox:fail:{code}]", "type": "image"})
    assert (generation["state"], generation["failure_code"], generation["output"]) == ("failed", code, None)


def test_errors_are_detail_bodies(agents: httpx.Client) -> None:
    assert agents.post("/generations", json={"prompt": "x [sandbox:reject]"}).status_code == 400
    assert agents.post("/generations", json={"prompt": "x [sandbox:error]"}).status_code == 500
    looped = agents.post(
        "/generations", json={"prompt": "x", "type": "video", "video": {"loop": True, "duration": "10s"}}
    )
    assert looped.status_code == 422 and "loop" in looped.json()["detail"]
    assert agents.get("/generations/nope").status_code == 404
    assert httpx.get(str(agents.base_url).rstrip("/") + "/generations/nope").status_code == 401
