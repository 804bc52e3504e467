"""Issue 12 item 5: every console page renders every kind of task — own-format and official videos, Kling
images, Photon images, a failed image task — for the customer and for the operator (a customer with an
image task got a 500 on /console/me for good; the operator's page of an image task was a 500 too)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from dreamrelay.http.console.i18n import MISSING_MARK
from dreamrelay.local_secrets import ensure_sandbox_key
from tests.conftest import Relay, make_settings, start_relay
from tests.integration.test_console import signed_in


@dataclass
class Kinds:
    relay: Relay
    ids: dict[str, str]  # kind → task id


def _wait(client: httpx.Client, path: str, key: str, done: tuple[str, ...]) -> dict[str, Any]:
    for _ in range(600):
        body = client.get(path).json()
        found = body.get("data", body)
        if found[key] in done:
            return dict(found)
        time.sleep(0.1)
    raise AssertionError(f"{path} never reached {done}")


def make_every_kind(relay: Relay) -> dict[str, str]:
    ids = {}
    with relay.admin() as admin:  # the Agents API goes to a luma-agents channel: the mounted sandbox's
        made = admin.post(
            "/admin/channels",
            json={
                "name": "agents",
                "kind": "luma-agents",
                "base_url": relay.url + "/sandbox/agents/v1",
                "secret_key": ensure_sandbox_key(relay.settings),
            },
        )
        assert made.status_code == 201, made.text
    with relay.client() as client:
        own = client.post("/luma/generations", json={"user_prompt": "a paper boat", "resolution": "540p"})
        ids["video"] = own.json()["id"]
        official = client.post(
            "/dream-machine/v1/generations", json={"prompt": "a kite", "resolution": "540p"}
        )
        ids["official video"] = official.json()["id"]
        kling = client.post("/kling/v1/images/generations", json={"prompt": "a red fox", "n": 2})
        ids["kling images"] = kling.json()["data"]["task_id"]
        failed = client.post("/kling/v1/images/generations", json={"prompt": "doomed [sandbox:fail]"})
        ids["failed images"] = failed.json()["data"]["task_id"]
        photon = client.post("/dream-machine/v1/generations/image", json={"prompt": "a lighthouse"})
        assert photon.status_code == 201, photon.text
        ids["photon image"] = photon.json()["id"]
        agents = client.post("/agents/v1/generations", json={"prompt": "a kite", "type": "image"})
        assert agents.status_code in (200, 201), agents.text
        ids["agents image"] = agents.json()["id"]
        _wait(client, f"/agents/v1/generations/{ids['agents image']}", "state", ("completed", "failed"))
        for kind in ("video", "official video", "photon image"):
            _wait(client, f"/dream-machine/v1/generations/{ids[kind]}", "state", ("completed", "failed"))
        for kind in ("kling images", "failed images"):
            path = f"/kling/v1/images/generations/{ids[kind]}"
            _wait(client, path, "task_status", ("succeed", "failed"))
    return ids


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kinds]:
    # The Agents channel is the mounted sandbox on loopback: its media may be copied from there.
    settings = make_settings(tmp_path_factory.mktemp("kinds"), allow_private_urls="127.0.0.0/8")
    with start_relay(settings) as relay:
        yield Kinds(relay, make_every_kind(relay))


def _page(browser: httpx.Client, path: str) -> str:
    answer = browser.get(path)
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    assert MISSING_MARK not in answer.text, path
    return answer.text


def test_the_customer_pages_render_every_kind(kinds: Kinds) -> None:
    relay = kinds.relay
    browser = signed_in(relay, relay.key)
    try:
        grid = _page(browser, "/console/me")
        for kind, task_id in kinds.ids.items():
            assert f"/console/me/tasks/{task_id}" in grid, kind
            page = _page(browser, f"/console/me/tasks/{task_id}")
            if "video" in kind:
                assert f'src="{relay.url}/media/tasks/{task_id}/video.mp4"' in page, kind
            elif kind == "failed images":
                assert "the upstream could not complete this task" in page
                assert "generation failed ([sandbox:fail] marker)" not in page  # the upstream's words
            else:
                assert f'<img src="{relay.url}/media/tasks/{task_id}/image-0.' in page, kind
        assert grid.count('class="frame pictures"') >= 2  # the image tasks show their first picture
        for page in ("/console/me/billing", "/console/me/playground", "/console/me/api"):
            _page(browser, page)
    finally:
        browser.close()


def test_the_operator_pages_render_every_kind(kinds: Kinds) -> None:
    relay = kinds.relay
    with relay.admin() as admin:
        token = str(admin.headers["Authorization"]).removeprefix("Bearer ")
    browser = signed_in(relay, token)
    try:
        listing = _page(browser, "/console/admin/tasks")
        for kind, task_id in kinds.ids.items():
            assert f"/console/admin/tasks/{task_id}" in listing, kind
            page = _page(browser, f"/console/admin/tasks/{task_id}")
            if kind == "failed images":
                assert "generation failed ([sandbox:fail] marker)" in page  # the operator reads them
            elif "video" not in kind:
                assert f'<img src="{relay.url}/media/tasks/{task_id}/image-0.' in page, kind
        for page in ("/console/admin", "/console/admin/accounts/demo", "/console/admin/prices"):
            _page(browser, page)
    finally:
        browser.close()
