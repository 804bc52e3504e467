"""Relay clients nobody here wrote, replayed request for request: Dooy's web client, 99AI, and every
route with a trailing slash (answered directly: same status, same body, never a redirect)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx

from tests.conftest import Relay

# Dooy (chatgpt-web-midjourney-proxy, src/api/luma.ts) sends JSON headers on every call, GETs too.
DOOY_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
DOOY_POLL_SECONDS = 0.05  # Dooy polls every 5 s; a tenth of a second keeps the test fast


def dooy_wait(client: httpx.Client, task_id: str) -> tuple[dict[str, Any], int]:
    """Dooy's loop: poll the task until completed with a download_url (or failed); count the GETs."""
    polls = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = client.get(f"/luma/generations/{task_id}", headers=DOOY_HEADERS, follow_redirects=False)
        polls += 1
        assert got.status_code == 200, got.text
        task = got.json()
        if (task["state"] == "completed" and task["video"]["download_url"]) or task["state"] == "failed":
            return task, polls
        time.sleep(DOOY_POLL_SECONDS)
    raise AssertionError(f"task {task_id} never finished")


def test_dooy_submit_and_polls_read_prompt_video_and_state(relay: Relay) -> None:
    body = {
        "aspect_ratio": "16:9",
        "loop": False,
        "expand_prompt": True,
        "image_url": "",
        "user_prompt": "a paper boat on a rainy street",
        "image_end_url": "",
    }
    with relay.client() as client:
        submitted = client.post("/luma/generations/", json=body, headers=DOOY_HEADERS, follow_redirects=False)
        assert submitted.status_code == 200, submitted.text
        task = submitted.json()
        assert task["state"] == "pending" and task["prompt"] == body["user_prompt"]
        done, _polls = dooy_wait(client, task["id"])
        assert done["state"] == "completed" and done["failure_reason"] is None
        assert done["prompt"] == body["user_prompt"]  # shown under the video and in "Extend:"
        assert done["video"]["url"].endswith(".mp4") and done["video"]["download_url"]
        assert httpx.get(done["video"]["download_url"]).content[4:8] == b"ftyp"  # a real MP4

        # Dooy's extend, with the slash-less path it also uses.
        extended = client.post(
            f"/luma/generations/{task['id']}/extend",
            json={"user_prompt": "it sails on", "image_url": "", "image_end_url": ""},
            headers=DOOY_HEADERS,
        )
        assert extended.status_code == 200 and extended.json()["prompt"] == "it sails on"


def test_dooy_reads_failure_reason(relay: Relay) -> None:
    with relay.client() as client:
        body = {"aspect_ratio": "16:9", "loop": False, "expand_prompt": False, "image_url": "",
                "user_prompt": "doomed [sandbox:fail]", "image_end_url": ""}  # fmt: skip
        task = client.post("/luma/generations/", json=body, headers=DOOY_HEADERS).json()
        done, _ = dooy_wait(client, task["id"])
        assert done["state"] == "failed" and done["failure_reason"] and done["video"] is None
        assert done["prompt"] == "doomed [sandbox:fail]"


def test_99ai_submit_to_the_slash_path_and_read_back(relay: Relay) -> None:
    """99AI's Luma service posts these three fields to /luma/generations/ and stores `prompt`."""
    with relay.client() as client:
        body = {"user_prompt": "一只猫在跳舞", "aspect_ratio": "9:16", "expand_prompt": True}
        submitted = client.post("/luma/generations/", json=body, follow_redirects=False)
        assert submitted.status_code == 200, submitted.text
        assert submitted.json()["prompt"] == "一只猫在跳舞"  # was "undefined" in 99AI before
        done, _ = dooy_wait(client, submitted.json()["id"])
        assert (done["state"], done["prompt"], done["failure_reason"]) == ("completed", "一只猫在跳舞", None)
        assert done["video"]["url"] and done["video"]["download_url"]
        assert (done["video"]["width"], done["video"]["height"]) == (752, 1360)  # 9:16


VOLATILE_BODIES = {"/metrics"}  # counters move between the two requests


def _strip_volatile(text: str) -> str:
    return re.sub(r'"(request_id|id|created_at)":"[^"]*"', "", text)


def test_every_route_answers_the_same_with_a_trailing_slash(relay: Relay) -> None:
    """Every path of the API (from /openapi.json), each method: no redirect, same status and body."""
    with relay.client() as client:
        task = client.post("/luma/generations", json={"user_prompt": "slash"}).json()
        done, _ = dooy_wait(client, task["id"])
        paths = client.get("/openapi.json").json()["paths"]
        assert len(paths) >= 10
        missing = str(uuid.uuid4())
        checked = 0
        for template, operations in paths.items():
            for method in operations:
                if method not in ("get", "post", "delete"):
                    continue
                # Reads use the finished task; writes an unknown id, so nothing is changed or made.
                task_id = done["id"] if method == "get" else missing
                path = re.sub(r"\{[^}]+\}", task_id, template)
                if template == "/media/{key}":
                    path = done["video"]["url"].split("/media/", 1)[1].join(["/media/", ""])
                if path == "/":
                    continue
                body: dict[str, Any] | None = {} if method == "post" else None
                plain = client.request(method, path, json=body, follow_redirects=False)
                slashed = client.request(method, path + "/", json=body, follow_redirects=False)
                assert slashed.status_code not in (301, 302, 307, 308), (method, path)
                assert slashed.status_code == plain.status_code, (method, path, plain.text, slashed.text)
                if method == "post" and plain.is_success:  # a write that made something new each time
                    assert sorted(slashed.json()) == sorted(plain.json()), (method, path)
                elif path not in VOLATILE_BODIES:
                    assert _strip_volatile(slashed.text) == _strip_volatile(plain.text), (method, path)
                checked += 1
        assert checked >= 15
