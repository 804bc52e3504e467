"""The batch query's envelope per key: the seed's bare array by default, new-api's
{"code": "success", "message": "", "data": [...]} for keys set so (admin API, CLI, console)."""

from __future__ import annotations

import re
import uuid
from contextlib import closing
from typing import Any

import httpx
import pytest

from dreamrelay.local_secrets import ensure_admin_token
from tests.conftest import Relay
from tests.e2e.test_cli import ok_json
from tests.integration.test_client_shapes import dooy_wait
from tests.integration.test_console import csrf, signed_in

pytestmark = pytest.mark.both_stores

ITEM_KEYS = [
    "task_id",
    "action",
    "status",
    "fail_reason",
    "submit_time",
    "start_time",
    "finish_time",
    "progress",
    "data",
]


def two_tasks(relay: Relay) -> tuple[dict[str, Any], dict[str, Any]]:
    with relay.client() as client:
        done = client.post("/luma/generations", json={"user_prompt": "fine"}).json()
        failed = client.post("/luma/generations", json={"user_prompt": "no [sandbox:fail]"}).json()
        return dooy_wait(client, done["id"])[0], dooy_wait(client, failed["id"])[0]


def test_newapi_envelope_per_key_and_errors_keep_their_shape(relay: Relay) -> None:
    done, failed = two_tasks(relay)
    ids = [failed["id"], str(uuid.uuid4()), done["id"], failed["id"]]
    with relay.admin() as admin:
        made = admin.post("/admin/keys", json={"account": "demo", "batch_envelope": "newapi"})
        assert made.status_code == 201 and made.json()["batch_envelope"] == "newapi"
        newapi_key = made.json()["key"]
        assert admin.post("/admin/keys", json={"account": "demo", "batch_envelope": "xml"}).status_code == 400

    with relay.client() as bare, relay.client(newapi_key) as wrapped:
        array = bare.post("/luma/tasks", json={"ids": ids}).json()
        assert [t["id"] for t in array] == [failed["id"], done["id"]]  # the default is unchanged

        answer = wrapped.post("/luma/tasks/", json={"ids": ids}, headers={"Content-Type": "text/plain"})
        assert answer.status_code == 200
        body = answer.json()
        assert (
            list(body) == ["code", "message", "data"] and body["code"] == "success" and body["message"] == ""
        )
        assert [item["task_id"] for item in body["data"]] == [failed["id"], done["id"]]
        assert [item["data"] for item in body["data"]] == array  # the same own-format objects inside
        first, second = body["data"]
        assert list(first) == ITEM_KEYS
        assert (first["status"], first["progress"], first["action"]) == ("FAILURE", "100%", "LUMA_VIDEO")
        assert first["fail_reason"] == failed["failure_reason"] != ""
        assert (second["status"], second["fail_reason"]) == ("SUCCESS", "")
        assert 0 < second["submit_time"] <= second["start_time"] <= second["finish_time"]
        assert wrapped.post("/luma/tasks", json={"ids": []}).json() == {
            "code": "success",
            "message": "",
            "data": [],
        }

        # Errors are the common error object in both modes.
        for client in (bare, wrapped):
            bad = client.post("/luma/tasks", content=b"{nope")
            assert bad.status_code == 400 and list(bad.json()) == ["error"]
            too_many = client.post("/luma/tasks", json={"ids": ["x"] * 1001})
            assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "invalid_request"
        refused = httpx.post(
            relay.url + "/luma/tasks", json={"ids": ids}, headers={"Authorization": "Bearer no"}
        )
        assert refused.status_code == 401 and list(refused.json()) == ["error"]

        # Switching the key back holds at once.
        with relay.admin() as admin:
            key_id = made.json()["id"]
            assert admin.patch(f"/admin/keys/{key_id}", json={"batch_envelope": "bare"}).status_code == 200
            assert admin.patch(f"/admin/keys/{key_id}", json={"batch_envelope": None}).status_code == 400
        assert wrapped.post("/luma/tasks", json={"ids": ids}).json() == array


@pytest.mark.sqlite_only
def test_cli_sets_the_envelope_on_create_and_limits(relay: Relay) -> None:
    data_dir = relay.settings.data_dir
    created = ok_json(data_dir, "keys", "create", "--account", "demo", "--batch-envelope", "newapi", "--json")
    assert created["batch_envelope"] == "newapi"
    with relay.client(created["key"]) as client:
        task = client.post("/luma/generations", json={"user_prompt": "cli"}).json()
        wrapped = client.post("/luma/tasks", json={"ids": [task["id"]]}).json()
        assert wrapped["code"] == "success" and wrapped["data"][0]["task_id"] == task["id"]
    changed = ok_json(data_dir, "keys", "limits", str(created["id"]), "--batch-envelope", "bare", "--json")
    assert changed["batch_envelope"] == "bare"
    # (Another process's change reaches the server's key cache within 30 s without Redis; the admin
    # API test above shows the switch itself.)
    listed = ok_json(data_dir, "keys", "list", "--json")
    assert [k["batch_envelope"] for k in listed if k["id"] == created["id"]] == ["bare"]


@pytest.mark.sqlite_only
def test_console_key_form_sets_the_envelope(relay: Relay) -> None:
    token, _ = ensure_admin_token(relay.settings)
    with relay.client() as client:
        task = client.post("/luma/generations", json={"user_prompt": "console"}).json()
    browser = signed_in(relay, token)
    with closing(browser):
        page = browser.get("/console/admin/accounts/demo")
        assert 'name="batch_envelope"' in page.text
        made = browser.post(
            "/console/admin/accounts/demo/keys",
            data={"csrf": csrf(page), "name": "wrapped", "batch_envelope": "newapi"},
        )
        assert made.status_code == 200, made.text
        key = re.search(r"dr-[A-Za-z0-9_-]{20,}", made.text)
        assert key is not None
    with relay.client(key.group(0)) as client:
        wrapped = client.post("/luma/tasks", json={"ids": [task["id"]]}).json()
        assert wrapped["code"] == "success" and wrapped["data"][0]["data"]["id"] == task["id"]
