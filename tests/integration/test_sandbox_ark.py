"""The sandbox's Ark content-generation tasks API (Seedance) over loopback HTTP: real MP4s at the asked
size, usage from the file written, a last frame when asked, list filters and paging, delete as Ark's
cancel-or-delete, and Ark's error shape for every refusal."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from dreamrelay.sandbox.app import create_sandbox_app
from dreamrelay.sandbox.core import SandboxConfig
from tests.support.live_server import live_server
from tests.support.media import decode_mp4, mean_abs_diff, open_jpeg, picture

KEY = "k"
TASKS = "/api/v3/contents/generations/tasks"
MODEL = "doubao-seedance-1-0-pro-250528"


def client_for(tmp_path: Path, queued: float = 0.0) -> Iterator[httpx.Client]:
    config = SandboxConfig(data_dir=tmp_path, api_key=KEY, queued_seconds=queued, dreaming_seconds=0.0)
    with live_server(create_sandbox_app(config)) as url:
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=url + "/ark", headers=headers, timeout=60) as client:
            yield client


@pytest.fixture
def ark(tmp_path: Path) -> Iterator[httpx.Client]:
    yield from client_for(tmp_path)


@pytest.fixture
def slow_ark(tmp_path: Path) -> Iterator[httpx.Client]:
    yield from client_for(tmp_path, queued=60.0)


def text(prompt: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": prompt}]


def created(client: httpx.Client, body: dict[str, Any]) -> str:
    answer = client.post(TASKS, json={"model": MODEL, **body})
    assert answer.status_code == 200, answer.text
    assert list(answer.json()) == ["id"] and answer.json()["id"].startswith("cgt-")
    return str(answer.json()["id"])


def finished(client: httpx.Client, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        task: dict[str, Any] = client.get(f"{TASKS}/{task_id}").json()
        if task["status"] not in ("queued", "running"):
            return task
        time.sleep(0.05)
    raise AssertionError("task did not finish")


def test_text_to_video_at_the_asked_size_with_usage_from_the_file(ark: httpx.Client) -> None:
    nulls = dict.fromkeys(("seed", "ratio", "frames", "callback_url", "draft", "tools"))  # as the SDK sends
    task = finished(
        ark,
        created(
            ark,
            {
                **nulls,
                "content": text("a red kite over a beach"),
                "resolution": "480p",
                "ratio": "9:16",
                "duration": 2,
                "fps": 16,
                "seed": 7,
                "return_last_frame": True,
            },
        ),
    )
    assert task["status"] == "succeeded", task
    assert list(task) == [
        "id", "model", "status", "content", "usage", "seed", "resolution", "ratio", "duration",
        "framespersecond", "service_tier", "execution_expires_after", "generate_audio", "draft",
        "created_at", "updated_at",
    ]  # fmt: skip
    assert (task["model"], task["seed"], task["resolution"], task["ratio"]) == (MODEL, 7, "480p", "9:16")
    assert (task["duration"], task["framespersecond"]) == (2, 16)
    clip = decode_mp4(httpx.get(task["content"]["video_url"], timeout=30).content)
    assert (clip.codec, clip.width, clip.height, clip.frames) == ("h264", 480, 864, 32)
    expected = 480 * 864 * 16 * 2 // 1024
    assert task["usage"] == {"completion_tokens": expected, "total_tokens": expected}
    last = open_jpeg(httpx.get(task["content"]["last_frame_url"], timeout=30).content)
    assert last.size == (480, 864)
    assert mean_abs_diff(np.asarray(last.convert("RGB")), clip.last) < 8


def test_text_commands_set_the_parameters_and_leave_the_prompt(ark: httpx.Client) -> None:
    task = finished(ark, created(ark, {"content": text("a lighthouse --rs 480p --rt 1:1 --dur 2 --seed 3")}))
    assert task["status"] == "succeeded", task
    assert (task["resolution"], task["ratio"], task["duration"], task["seed"]) == ("480p", "1:1", 2, 3)
    assert "last_frame_url" not in task["content"]
    clip = decode_mp4(httpx.get(task["content"]["video_url"], timeout=30).content)
    assert (clip.width, clip.height, clip.frames) == (640, 640, 48)
    assert task["usage"]["completion_tokens"] == 640 * 640 * 24 * 2 // 1024


def test_first_and_last_frames_start_and_end_the_clip_at_the_images_ratio(ark: httpx.Client) -> None:
    first, last = picture(960, 960, seed=1), picture(960, 960, seed=2)

    def image(data: bytes, role: str) -> dict[str, Any]:
        url = "data:image/png;base64," + base64.b64encode(data).decode()
        return {"type": "image_url", "image_url": {"url": url}, "role": role}

    body = {"content": [*text("--rs 480p --dur 2"), image(first, "first_frame"), image(last, "last_frame")]}
    task = finished(ark, created(ark, body))
    assert task["status"] == "succeeded", task
    assert task["ratio"] == "1:1"  # adaptive: the first image's ratio
    clip = decode_mp4(httpx.get(task["content"]["video_url"], timeout=30).content)
    assert (clip.width, clip.height) == (640, 640)
    small = [np.asarray(open_jpeg_or_png(d).resize((640, 640))) for d in (first, last)]
    assert mean_abs_diff(clip.first, small[0]) < 12
    assert mean_abs_diff(clip.last, small[1]) < 12


def open_jpeg_or_png(data: bytes) -> Any:
    import io

    from PIL import Image

    return Image.open(io.BytesIO(data)).convert("RGB")


def test_markers_fail_expire_reject_and_error(ark: httpx.Client) -> None:
    failed = finished(ark, created(ark, {"content": text("x [sandbox:fail] --rs 480p --dur 2")}))
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "OutputVideoSensitiveContentDetected"
    assert "content" not in failed and "usage" not in failed
    expired = finished(ark, created(ark, {"content": text("x [sandbox:expire]")}))
    assert expired["status"] == "expired"
    rejected = ark.post(TASKS, json={"model": MODEL, "content": text("x [sandbox:reject]")})
    assert rejected.status_code == 400
    assert rejected.json()["error"]["code"] == "InvalidParameter"
    broken = ark.post(TASKS, json={"model": MODEL, "content": text("x [sandbox:error]")})
    assert broken.status_code == 500
    assert broken.json()["error"]["code"] == "InternalServiceError"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"content": text("x"), "resolution": "4k"}, "resolution"),
        ({"content": text("x"), "ratio": "2:1"}, "ratio"),
        ({"content": text("x"), "duration": 16}, "duration"),
        ({"content": text("x"), "duration": True}, "duration"),
        ({"content": text("x"), "fps": 60}, "fps"),
        ({"content": text("x"), "frames": 30}, "frames"),
        ({"content": text("x"), "seed": 2**32}, "seed"),
        ({"content": text("x --dur five")}, "duration"),
        ({"content": text("x --wm maybe")}, "watermark"),
        ({"content": text("x"), "callback_url": "ftp://x"}, "callback_url"),
        ({"content": []}, "content"),
        ({"content": [{"type": "image_url", "image_url": {"url": "data:,"}, "role": "mask"}]}, "content"),
        ({"content": "x"}, "content"),
        ({"model": None, "content": text("x")}, "model"),
    ],
)
def test_bad_bodies_get_arks_error_shape(ark: httpx.Client, body: dict[str, Any], param: str) -> None:
    answer = ark.post(TASKS, json={"model": MODEL, **body})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["param"], error["type"]) == ("InvalidParameter", param, "BadRequest")
    assert answer.headers["x-request-id"]


def test_auth_and_unknown_tasks(ark: httpx.Client) -> None:
    answer = httpx.get(str(ark.base_url).rstrip("/") + TASKS, timeout=10)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "AuthenticationError"
    missing = ark.get(f"{TASKS}/cgt-nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"
    assert ark.delete(f"{TASKS}/cgt-nope").status_code == 404
    assert ark.post(TASKS, content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    for query in ("page_num=0", "page_size=501", "page_num=x", "filter.status=done"):
        assert ark.get(f"{TASKS}?{query}").status_code == 400


def test_list_filters_and_pages_and_delete_cancels_or_forgets(slow_ark: httpx.Client) -> None:
    ids = [created(slow_ark, {"content": text(f"clip {i}"), "model": m}) for i, m in enumerate("aab")]
    everything = slow_ark.get(TASKS).json()
    assert everything["total"] == 3
    assert [t["id"] for t in everything["items"]] == ids[::-1]
    assert {t["status"] for t in everything["items"]} == {"queued"}
    page = slow_ark.get(TASKS, params={"page_num": 2, "page_size": 2}).json()
    assert (page["total"], [t["id"] for t in page["items"]]) == (3, [ids[0]])
    by_model = slow_ark.get(TASKS, params={"filter.model": "a"}).json()
    assert (by_model["total"], {t["id"] for t in by_model["items"]}) == (2, set(ids[:2]))
    by_ids = slow_ark.get(TASKS, params=[("filter.task_ids", ids[0]), ("filter.task_ids", ids[2])]).json()
    assert {t["id"] for t in by_ids["items"]} == {ids[0], ids[2]}
    assert slow_ark.delete(f"{TASKS}/{ids[0]}").json() == {}
    assert slow_ark.get(f"{TASKS}/{ids[0]}").json()["status"] == "cancelled"
    cancelled = slow_ark.get(TASKS, params={"filter.status": "cancelled"}).json()
    assert [t["id"] for t in cancelled["items"]] == [ids[0]]
    assert slow_ark.delete(f"{TASKS}/{ids[0]}").json() == {}  # a finished task: forgotten
    assert slow_ark.get(f"{TASKS}/{ids[0]}").status_code == 404
    assert slow_ark.get(TASKS).json()["total"] == 2


def test_deleting_a_finished_task_removes_its_files(ark: httpx.Client) -> None:
    task = finished(ark, created(ark, {"content": text("gone --rs 480p --dur 2"), "return_last_frame": True}))
    urls = [task["content"]["video_url"], task["content"]["last_frame_url"]]
    assert all(httpx.get(u, timeout=30).status_code == 200 for u in urls)
    assert ark.delete(f"{TASKS}/{task['id']}").json() == {}
    assert [httpx.get(u, timeout=30).status_code for u in urls] == [404, 404]


def test_the_unchanged_ark_sdk_reads_every_answer(ark: httpx.Client) -> None:
    from volcenginesdkarkruntime import Ark

    sdk = Ark(base_url=str(ark.base_url).rstrip("/") + "/api/v3", api_key=KEY, max_retries=0)
    tasks = sdk.content_generation.tasks
    made = tasks.create(
        model=MODEL, content=[{"type": "text", "text": "a kite --rs 480p --dur 2"}], return_last_frame=True
    )
    task = tasks.get(task_id=made.id)
    deadline = time.monotonic() + 90
    while task.status in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.05)
        task = tasks.get(task_id=made.id)
    assert task.status == "succeeded"
    assert task.usage.completion_tokens == 864 * 480 * 24 * 2 // 1024
    assert task.content.video_url and task.content.last_frame_url and task.framespersecond == 24
    listed = tasks.list(page_num=1, page_size=5, status="succeeded", task_ids=[made.id])
    assert (listed.total, [t.id for t in listed.items]) == (1, [made.id])
    tasks.delete(made.id)
    assert tasks.list(task_ids=[made.id]).total == 0
