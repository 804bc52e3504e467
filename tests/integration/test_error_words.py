"""Refusals built from a library's failure are described in our own words.

Python's URL parser and aiohttp word their failures with resolved addresses, SSL internals and class
names; the customer reads the field and what went wrong: in the 400 of a submit, and in the attempts of
a callback delivery. A body that does not validate names the fields, never our schema classes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Relay, make_settings, start_relay
from tests.integration.test_upstream_leaks import closed_port

CONNECT_FAILED = "connection failed: the host refused or did not answer"
# What the library's own words carry, none of which a customer may read.
INTERNALS = ("Client", "Error", "ssl:default", "Connect call", "Errno", "Port", "port out of range")


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    settings = make_settings(
        tmp_path, allow_private_urls="127.0.0.0/8", callback_retry_base_seconds=30, callback_timeout_seconds=2
    )
    with start_relay(settings) as running:
        yield running


def error_of(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 400, answer.text
    assert [s for s in INTERNALS if s in answer.text] == [], answer.text
    found: dict[str, Any] = answer.json()["error"]
    return found


def test_a_malformed_or_unreachable_url_is_refused_in_our_words(relay: Relay) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    with relay.client() as client:
        for field in ("notify_hook", "image_url"):
            answer = client.post(
                "/luma/generations", json={"user_prompt": "a fox", field: "http://example.com:99999/"}
            )
            assert error_of(answer)["message"] == f"{field}: malformed URL: its host or port cannot be read"
        answer = client.post("/luma/generations", json={"user_prompt": "a fox", "image_url": f"{dead}/a.png"})
        assert error_of(answer) == {
            "message": f"image_url: the image could not be fetched ({CONNECT_FAILED})",
            "type": "invalid_request_error",
            "code": "invalid_request",
        }


def test_a_callback_that_cannot_be_delivered_reads_in_our_words(relay: Relay) -> None:
    hook = f"http://127.0.0.1:{closed_port()}/hook"
    with relay.client() as client:
        submitted = client.post("/luma/generations", json={"user_prompt": "a fox", "notify_hook": hook})
        assert submitted.status_code == 200, submitted.text
        task_id = submitted.json()["id"]
        deadline = time.monotonic() + 60
        attempts: list[dict[str, Any]] = []
        while not attempts and time.monotonic() < deadline:
            answer = client.get("/account/deliveries", params={"task_id": task_id})
            assert answer.status_code == 200, answer.text
            attempts = [a for event in answer.json() for a in event["attempts_log"]]
            time.sleep(0.1)
    assert attempts, "no delivery was attempted"
    assert {(a["status_code"], a["error"]) for a in attempts} == {(None, CONNECT_FAILED)}


def test_a_body_that_does_not_validate_never_names_our_schema_classes(relay: Relay) -> None:
    with relay.client() as client:
        agents = client.post(
            "/agents/v1/generations", json={"prompt": "x", "type": "video_edit", "source": "a"}
        )
        official = client.post(
            "/dream-machine/v1/generations/video/modify",
            json={"generation_type": "modify_video", "model": "ray-2", "mode": "flex_1", "media": "a"},
        )
    assert (agents.status_code, agents.json()) == (
        400,
        {"detail": "source: Input should be a valid dictionary"},
    )
    assert (official.status_code, official.json()) == (
        400,
        {"detail": "media: Input should be a valid dictionary"},
    )
