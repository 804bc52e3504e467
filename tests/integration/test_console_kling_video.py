"""The console and Kling video (both stores): the `kling` kind in the operator's channel form, the
playground's Kling video model (JSON API and the form without JavaScript), its task in the customer's
grid and on its page."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from dreamrelay.local_secrets import ensure_admin_token
from tests.conftest import make_settings, start_relay
from tests.integration.test_console import csrf, signed_in, wait_for

pytestmark = pytest.mark.both_stores

MODEL = "kling-v1-6"


def test_kling_video_in_the_channel_form_playground_and_grid(tmp_path: Path) -> None:
    with start_relay(make_settings(tmp_path)) as relay:
        key = relay.new_key("viewer", balance=1000)
        token, _ = ensure_admin_token(relay.settings)
        with closing(signed_in(relay, token)) as operator:
            form = operator.get("/console/admin/channels").text
            assert "<option>kling</option>" in form
        with closing(signed_in(relay, key)) as browser:
            page = browser.get("/console/me/playground")
            assert f"<option>{MODEL}</option>" in page.text
            headers = {"X-CSRF-Token": csrf(page)}
            body = {
                "user_prompt": "a heron",
                "model_name": MODEL,
                "resolution": "1080p",
                "aspect_ratio": "1:1",
            }
            answer = browser.post("/console/me/api/generations", json=body, headers=headers)
            assert answer.status_code == 200, answer.text
            task = wait_for(browser, answer.json()["id"], ("completed", "failed"))
            assert task["state"] == "completed" and task["video"]["url"], task
            refused = browser.post(
                "/console/me/api/generations", json={**body, "resolution": "540p"}, headers=headers
            )
            assert refused.status_code == 400 and "resolution" in refused.json()["error"]["message"]
            unhashable = browser.post(
                "/console/me/api/generations", json={**body, "model_name": [MODEL]}, headers=headers
            )
            assert unhashable.status_code == 400
            # Without JavaScript the form posts here and lands on the task's page.
            fields = {"csrf": csrf(page), "user_prompt": "a crane", "model_name": MODEL, "duration": "10s"}
            landed = browser.post("/console/me/playground", data=fields)
            assert landed.status_code == 303 and "/console/me/tasks/" in landed.headers["location"]
            grid = browser.get("/console/me").text
            assert task["id"] in grid and MODEL in grid
            shown = browser.get(f"/console/me/tasks/{task['id']}")
            assert shown.status_code == 200 and task["video"]["url"] in shown.text
