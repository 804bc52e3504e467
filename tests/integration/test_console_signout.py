"""Issue 12 item 8: signing out ends the console session on the server. A copy of the cookie taken before
sign-out gets the sign-in page afterwards, from the process that signed out and from another one
(two DreamRelay apps on one store, each with its own runtime and caches)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from dreamrelay.local_secrets import ensure_admin_token
from tests.conftest import free_port, make_settings, start_relay
from tests.integration.test_console import csrf, signed_in

pytestmark = pytest.mark.both_stores


def _opens(url: str, cookie: str, page: str) -> int:
    with httpx.Client(base_url=url, timeout=30, cookies={"dr_console": cookie}) as copy:
        return copy.get(page).status_code


def test_a_cookie_copied_before_sign_out_is_refused_by_every_process(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with start_relay(settings) as first:
        second_settings = settings.model_copy(update={"port": free_port()})
        with start_relay(second_settings, key=first.key) as second:
            token, _ = ensure_admin_token(settings)
            for secret, page in ((first.key, "/console/me/billing"), (token, "/console/admin/accounts")):
                browser = signed_in(first, secret)
                try:
                    cookie = browser.cookies["dr_console"]
                    assert _opens(first.url, cookie, page) == 200
                    assert _opens(second.url, cookie, page) == 200  # one session, every process

                    answer = browser.post("/console/logout", data={"csrf": csrf(browser.get(page))})
                    assert answer.status_code == 303 and answer.headers["location"] == "/console/login"

                    for url in (first.url, second.url):
                        assert _opens(url, cookie, page) == 303  # to the sign-in page
                        with httpx.Client(base_url=url, cookies={"dr_console": cookie}) as copy:
                            landing = copy.get(page, follow_redirects=True)
                            assert landing.status_code == 200 and 'name="secret"' in landing.text
                finally:
                    browser.close()

            # Signing in again makes a new session that works.
            again = signed_in(second, first.key)
            try:
                assert again.get("/console/me/billing").status_code == 200
            finally:
                again.close()
