"""Issue 12 item 5 in a real browser (Debian's Chromium through Playwright): the customer's grid and task
pages and the operator's task pages show every kind of task — videos play, images load — with no
untranslated key, for own-format and official videos, Kling and Photon images and a failed image task.
Screenshots go to test-output/console-kinds/ (a folder of its own: test_console_browser.py empties
test-output/console/ when it starts, maybe while this test runs on another pytest-xdist worker)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from dreamrelay.http.console.i18n import MISSING_MARK
from dreamrelay.local_secrets import ensure_admin_token
from tests.conftest import make_settings, start_relay
from tests.integration.test_console_task_kinds import make_every_kind
from tests.support.browser import CHROMIUM, launch

playwright_api = pytest.importorskip("playwright.sync_api")
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "console-kinds"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("CI") != "true",
    reason="needs Debian's chromium (make test installs it)",
)

IMAGES_LOADED = "[...document.querySelectorAll('{0} img')].every(i => i.complete && i.naturalWidth > 0)"


def _wait(page: Any, condition: str, timeout_ms: int = 15_000) -> None:
    for _ in range(timeout_ms // 100):
        if page.evaluate(f"() => Boolean({condition})"):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"still false after {timeout_ms} ms: {condition}")


def _sign_in(page: Any, url: str, secret: str) -> None:
    page.goto(url + "/console")
    page.fill("#secret", secret)
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_load_state()


def _check(page: Any, name: str, kind: str) -> None:
    assert MISSING_MARK not in page.content(), name
    if "video" in kind:
        _wait(
            page,
            "(document.querySelector('video.player') || {readyState: 0}).readyState >= 1",
        )
    elif kind == "failed images":
        assert page.locator(".flash.error").count() >= 1 or "failed" in page.content()
    else:
        assert page.locator(".gallery img").count() >= 1, name
        _wait(page, IMAGES_LOADED.format(".gallery"))
    page.screenshot(path=str(SHOTS / f"kinds-{name}.png"), full_page=True)


def test_every_task_kind_shows_in_the_browser(tmp_path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with start_relay(make_settings(tmp_path, allow_private_urls="127.0.0.0/8")) as relay:
        ids = make_every_kind(relay)
        token, _ = ensure_admin_token(relay.settings)
        with playwright_api.sync_playwright() as p:
            browser = launch(p)
            try:
                customer = browser.new_page()
                _sign_in(customer, relay.url, relay.key)
                customer.goto(relay.url + "/console/me")
                assert MISSING_MARK not in customer.content()
                assert customer.locator("#video-grid li").count() == len(ids)
                _wait(customer, IMAGES_LOADED.format("#video-grid .frame.pictures"))
                customer.screenshot(path=str(SHOTS / "kinds-grid.png"), full_page=True)
                operator = browser.new_page()
                _sign_in(operator, relay.url, token)
                for kind, task_id in ids.items():
                    slug = kind.replace(" ", "-")
                    customer.goto(f"{relay.url}/console/me/tasks/{task_id}")
                    _check(customer, f"me-{slug}", kind)
                    operator.goto(f"{relay.url}/console/admin/tasks/{task_id}")
                    _check(operator, f"admin-{slug}", kind)
            finally:
                browser.close()
