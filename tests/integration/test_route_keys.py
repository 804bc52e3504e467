"""Every customer route, whichever format family it belongs to, refuses a missing, unknown, disabled or
expired key before doing anything, with a JSON answer and never a 5xx (lean paths included)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Relay, make_settings, start_relay

pytestmark = pytest.mark.both_stores

ID = str(uuid.UUID(int=7))


def customer_operations(relay: Relay) -> list[tuple[str, str]]:
    """(method, path) of every operation the OpenAPI document puts behind a Bearer key, but the
    operator's (admin token) and /metrics (its own token rule)."""
    spec = httpx.get(f"{relay.url}/openapi.json", timeout=30).json()
    found = []
    for path, operations in spec["paths"].items():
        if path.startswith("/admin") or path == "/metrics":
            continue
        for method, operation in operations.items():
            if operation.get("security"):
                found.append((method.upper(), re.sub(r"\{key_id\}", "1", re.sub(r"\{\w+_id\}", ID, path))))
    return found


@pytest.fixture
def running(tmp_path_factory: pytest.TempPathFactory, store: str) -> Iterator[Relay]:
    with start_relay(make_settings(tmp_path_factory.mktemp(f"keys-{store}"))) as relay:
        yield relay


def test_every_customer_route_refuses_missing_unknown_disabled_and_expired_keys(running: Relay) -> None:
    operations = customer_operations(running)
    assert len(operations) >= 40  # the own, official, Kling, AceData, Agents and account families
    paths = {path for _, path in operations}
    # and this round's: /v1/videos (edits included), Ark's tasks under both prefixes, Kling video
    for added in (
        "/v1/videos",
        "/v1/videos/edits",
        "/api/v3/contents/generations/tasks",
        "/seedance/v3/contents/generations/tasks",
        "/kling/v1/videos/text2video",
        "/kling/v1/videos/image2video",
    ):
        assert added in paths, added
    disabled = running.new_key("disabled", balance=1000, disabled=True)
    expired = running.new_key("expired", balance=1000, expires_at=time.time() - 1)
    headers: dict[str, tuple[dict[str, str], int]] = {
        "missing": ({}, 401),
        "unknown": ({"Authorization": "Bearer dr-" + "0" * 40}, 401),
        "disabled": ({"Authorization": f"Bearer {disabled}"}, 403),
        "expired": ({"Authorization": f"Bearer {expired}"}, 403),
    }
    wrong = []
    with httpx.Client(base_url=running.url, timeout=30) as client:
        for method, path in operations:
            for name, (sent, status) in headers.items():
                answer = client.request(method, path, headers=sent, json={})
                body = answer.json()  # JSON in every format family
                if answer.status_code != status or not body:
                    wrong.append((method, path, name, answer.status_code, answer.text[:120]))
    assert wrong == []
