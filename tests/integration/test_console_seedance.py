"""The console and Seedance (both stores): the `seedance` kind in the operator's channel form, the
playground's Seedance model (JSON API and the form without JavaScript) charged by the tokens it used, and
its tasks, the playground's and one made through the Ark tasks API, in the customer's grid and pages."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from dreamrelay.local_secrets import ensure_admin_token
from tests.conftest import make_settings, start_relay
from tests.integration.test_console import csrf, signed_in, wait_for
from tests.integration.test_money import balance_and_ledger

pytestmark = pytest.mark.both_stores

MODEL = "doubao-seedance-1-0-pro-250528"


def test_seedance_in_the_channel_form_playground_and_grid(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with start_relay(settings) as relay:
        key = relay.new_key("viewer", balance=100_000)
        token, _ = ensure_admin_token(relay.settings)
        with closing(signed_in(relay, token)) as operator:
            assert "<option>seedance</option>" in operator.get("/console/admin/channels").text
        with relay.client(key) as client:
            ark = client.post(
                "/api/v3/contents/generations/tasks",
                json={"model": MODEL, "content": [{"type": "text", "text": "a lantern --dur 2"}]},
            )
            assert ark.status_code == 200, ark.text
        with closing(signed_in(relay, key)) as browser:
            page = browser.get("/console/me/playground")
            assert f"<option>{MODEL}</option>" in page.text
            headers = {"X-CSRF-Token": csrf(page)}
            body = {"user_prompt": "a heron", "model_name": MODEL, "resolution": "720p", "duration": "5s"}
            answer = browser.post("/console/me/api/generations", json=body, headers=headers)
            assert answer.status_code == 200, answer.text
            task = wait_for(browser, answer.json()["id"], ("completed", "failed"))
            assert task["state"] == "completed" and task["video"]["url"], task
            # Charged what it used: hold, capture of the tokens, release of the rest.
            _, rows = balance_and_ledger(settings, "viewer")
            kinds = sorted(r["kind"] for r in rows if r["task_id"] == task["id"])
            assert kinds == ["capture", "hold", "release"], kinds
            refused = browser.post(
                "/console/me/api/generations", json={**body, "resolution": "4k"}, headers=headers
            )
            assert refused.status_code == 400 and "resolution" in refused.json()["error"]["message"]
            # Without JavaScript the form posts here and lands on the task's page.
            fields = {"csrf": csrf(page), "user_prompt": "a crane", "model_name": MODEL, "duration": "5s"}
            landed = browser.post("/console/me/playground", data=fields)
            assert landed.status_code == 303 and "/console/me/tasks/" in landed.headers["location"]
            grid = browser.get("/console/me").text
            assert task["id"] in grid and ark.json()["id"] in grid and MODEL in grid
            shown = browser.get(f"/console/me/tasks/{task['id']}")
            assert shown.status_code == 200 and task["video"]["url"] in shown.text
            assert browser.get(f"/console/me/tasks/{ark.json()['id']}").status_code == 200
