"""Issue 12 item 9: after DELETE /dream-machine/v1/generations/<id> the task's media is gone (local
directory and S3 bucket), the task is hidden everywhere a customer looks (the console grid too), and
media is never sent with headers that let a cache keep it for a year."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Relay, make_settings, start_relay
from tests.integration.test_console import signed_in
from tests.integration.test_luma_lifecycle import wait_for
from tests.integration.test_storage import bucket, s3_endpoint, s3_settings  # noqa: F401 (fixtures)
from tests.support.media import picture

pytestmark = pytest.mark.both_stores

PROMPT = "a lantern only I should ever see"


def completed_with_input(relay: Relay) -> tuple[dict[str, Any], str]:
    """A completed task made from an input image; (own-format task, our stored input's URL)."""
    image = "data:image/png;base64," + base64.b64encode(picture(768, 432, seed=5)).decode()
    with relay.client() as client:
        created = client.post(
            "/dream-machine/v1/generations",
            json={
                "prompt": PROMPT,
                "resolution": "540p",
                "keyframes": {"frame0": {"type": "image", "url": image}},
            },
        )
        assert created.status_code == 201, created.text
        input_url = created.json()["request"]["keyframes"]["frame0"]["url"]
        task = wait_for(client, created.json()["id"], {"completed", "failed"})
    assert task["state"] == "completed", task["failure_reason"]
    return task, input_url


def media_urls(task: dict[str, Any], input_url: str) -> list[str]:
    return [task["video"]["url"], task["thumbnail"]["url"], task["last_frame"]["url"], input_url]


def delete_and_check_gone(relay: Relay, task: dict[str, Any], urls: list[str]) -> None:
    for url in urls:
        answer = httpx.get(url, timeout=10)
        assert answer.status_code == 200, url
        cache = answer.headers["Cache-Control"]
        assert "immutable" not in cache and "public" not in cache and "private" in cache
    with relay.client() as client:
        for _ in range(2):  # the second answer comes from the joined answers the body cache keeps
            batch = client.post("/luma/tasks", json={"ids": [task["id"]]}).json()
            assert [t["id"] for t in batch] == [task["id"]]
        assert client.delete(f"/dream-machine/v1/generations/{task['id']}").status_code == 204
        assert client.get(f"/luma/generations/{task['id']}").status_code == 404
        assert client.get(f"/dream-machine/v1/generations/{task['id']}").status_code == 404
        assert client.post("/luma/tasks", json={"ids": [task["id"]]}).json() == []
        listed = client.get("/dream-machine/v1/generations").json()
        assert task["id"] not in [g["id"] for g in listed["generations"]]
    for url in urls:
        for method in ("GET", "HEAD"):
            gone = httpx.request(method, url, timeout=10)
            assert gone.status_code == 404, (method, url)
        ranged = httpx.get(url, headers={"Range": "bytes=0-10"}, timeout=10)
        assert ranged.status_code == 404
    browser = signed_in(relay, relay.key)
    try:
        grid = browser.get("/console/me")
        assert grid.status_code == 200
        assert PROMPT not in grid.text and task["id"] not in grid.text
        assert browser.get(f"/console/me/tasks/{task['id']}").status_code == 404
    finally:
        browser.close()
    with relay.admin() as admin:  # the operator still sees it
        assert admin.get(f"/admin/tasks/{task['id']}").status_code == 200


def test_deleted_task_media_is_gone_from_the_local_directory(tmp_path: Path) -> None:
    with start_relay(make_settings(tmp_path)) as relay:
        task, input_url = completed_with_input(relay)
        delete_and_check_gone(relay, task, media_urls(task, input_url))
    assert list((tmp_path / "media" / "tasks" / task["id"]).glob("*")) == []
    assert list((tmp_path / "media" / "inputs").glob("*")) == []


@pytest.mark.sqlite_only
def test_deleted_task_media_is_gone_from_the_bucket(
    tmp_path: Path,
    s3_endpoint: str,  # noqa: F811
    bucket: Any,  # noqa: F811
) -> None:
    settings = make_settings(tmp_path, **s3_settings(tmp_path, s3_endpoint, bucket))
    with start_relay(settings) as relay:
        task, input_url = completed_with_input(relay)
        assert len(list(bucket.objects.all())) == 4
        delete_and_check_gone(relay, task, media_urls(task, input_url))
    assert list(bucket.objects.all()) == []
