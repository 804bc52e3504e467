"""The operator's API under /admin: token, accounts, money, keys, prices, ledger, usage."""

from __future__ import annotations

import re
import stat
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from dreamrelay.http.app import create_app
from dreamrelay.local_secrets import admin_token_path
from dreamrelay.services.auth import SIGN_IN_ATTEMPTS_PER_MINUTE
from tests.conftest import Relay, make_settings, start_relay
from tests.integration.test_luma_lifecycle import wait_for

pytestmark = pytest.mark.both_stores


def admin_routes() -> list[tuple[str, str]]:
    """Every /admin operation the app publishes in its OpenAPI document."""
    with tempfile.TemporaryDirectory() as scratch:
        paths = create_app(make_settings(Path(scratch))).openapi()["paths"]
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in paths.items()
        if path.startswith("/admin")
        for method in operations
    ]


ADMIN_ROUTES = admin_routes()


def test_every_admin_route_is_listed() -> None:
    paths = {path for _method, path in ADMIN_ROUTES}
    assert {"/admin/accounts", "/admin/keys", "/admin/prices", "/admin/ledger", "/admin/usage"} <= paths
    assert len(ADMIN_ROUTES) >= 15


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic abc", "Bearer"])
def test_every_admin_route_rejects_a_missing_or_wrong_token(relay: Relay, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    guesses = 0  # a well-formed wrong token is a guess: 429 once this address has used its attempts
    with httpx.Client(base_url=relay.url, headers=headers, timeout=10) as client:
        for method, path in ADMIN_ROUTES:
            answer = client.request(method, path, json={"name": "x", "amount": 5})
            guesses += header == "Bearer wrong-token"
            if guesses > SIGN_IN_ATTEMPTS_PER_MINUTE:
                assert answer.status_code == 429, (method, path, answer.text)
                assert answer.json()["error"]["code"] == "rate_limited"
                continue
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.json()["error"]["code"] == "invalid_admin_token"
    if guesses > SIGN_IN_ATTEMPTS_PER_MINUTE:
        time.sleep(60 / SIGN_IN_ATTEMPTS_PER_MINUTE + 0.2)  # one attempt refilled
    with relay.admin() as admin:
        assert [a["name"] for a in admin.get("/admin/accounts").json()] == ["demo"]


def test_the_customer_key_is_not_an_admin_token(relay: Relay) -> None:
    with relay.client() as client:
        assert client.get("/admin/accounts").status_code == 401


def test_the_token_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with start_relay(settings) as relay, relay.admin() as admin:
        assert admin.get("/admin/accounts").status_code == 200
        path = admin_token_path(settings)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        token = path.read_text().strip()
        assert token.startswith("dra-") and len(token) > 40


def test_an_admin_token_from_the_environment_wins(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, admin_token="operator-chosen-token")
    with start_relay(settings) as relay:
        ok = httpx.get(
            f"{relay.url}/admin/accounts", headers={"Authorization": "Bearer operator-chosen-token"}
        )
        assert ok.status_code == 200
        assert not admin_token_path(settings).exists()


def test_a_top_up_shows_in_balance_and_ledger(relay: Relay) -> None:
    with relay.admin() as admin:
        created = admin.post("/admin/accounts", json={"name": "acme", "balance": 300})
        assert created.status_code == 201
        assert created.json()["balance"] == 300
        topped = admin.post("/admin/accounts/acme/topup", json={"amount": 1200, "note": "invoice 7"})
        assert topped.json() == {"account": "acme", "amount": 1200, "balance": 1500}
        assert admin.get("/admin/accounts/acme").json()["balance"] == 1500
        rows = admin.get("/admin/ledger", params={"account": "acme"}).json()
        assert [(r["kind"], r["amount"], r["note"]) for r in rows] == [
            ("topup", 1200, "invoice 7"),
            ("topup", 300, "opening balance"),
        ]
        assert admin.get("/admin/ledger/verify").json() == {
            "accounts_checked": 2,
            "balanced": True,
            "mismatches": [],
            "keys_checked": 1,
            "in_flight_mismatches": [],
        }


def test_bad_admin_input_is_400_and_changes_nothing(relay: Relay) -> None:
    with relay.admin() as admin:
        admin.post("/admin/accounts", json={"name": "acme", "balance": 100})
        for method, path, body in [
            ("POST", "/admin/accounts", {"name": "bad name!"}),
            ("POST", "/admin/accounts", {"name": "ok", "balance": -1}),
            ("POST", "/admin/accounts", {"name": "ok", "balanse": 5}),
            ("POST", "/admin/accounts/acme/topup", {"amount": -5}),
            ("POST", "/admin/accounts/acme/topup", {"amount": "5"}),
            ("POST", "/admin/keys", {"account": "acme", "allowed_models": ["gpt-9"]}),
            ("PUT", "/admin/prices", {"model": "ray-v2", "credits": -1}),
            ("PUT", "/admin/prices", {"model": "nope", "credits": 1}),
            ("GET", "/admin/ledger?limit=0", None),
            ("GET", "/admin/ledger?kind=gift", None),
        ]:
            answer = admin.request(method, path, json=body)
            assert answer.status_code == 400, (method, path, answer.text)
            assert answer.json()["error"]["code"] == "invalid_request"
        adjusted = admin.post("/admin/accounts/acme/adjust", json={"amount": -101})
        assert adjusted.status_code == 409
        assert admin.get("/admin/accounts/acme").json()["balance"] == 100
        assert admin.get("/admin/accounts/nobody").status_code == 404
        assert admin.post("/admin/accounts", json={"name": "acme"}).status_code == 409
        assert admin.get("/admin/ledger/verify").json()["balanced"] is True


def test_keys_made_disabled_and_limited_through_the_admin_api(relay: Relay) -> None:
    with relay.admin() as admin:
        admin.post("/admin/accounts", json={"name": "acme", "balance": 10_000})
        made = admin.post("/admin/keys", json={"account": "acme", "name": "ci", "allowed_models": ["ray-v2"]})
        assert made.status_code == 201
        key = made.json()["key"]
        key_id = made.json()["id"]
        listed = admin.get("/admin/keys", params={"account": "acme"}).json()
        assert [k["id"] for k in listed] == [key_id]
        assert key not in str(listed) and "key_hash" not in listed[0]
        with relay.client(key) as customer:
            flash = customer.post("/luma/generations", json={"user_prompt": "x", "model_name": "ray-flash-2"})
            assert flash.status_code == 403 and flash.json()["error"]["code"] == "forbidden"
            assert customer.get("/luma/generations/nope").status_code == 404
            patched = admin.patch(f"/admin/keys/{key_id}", json={"disabled": True})
            assert patched.status_code == 200 and patched.json()["disabled"] is True
            assert customer.get("/luma/generations/nope").status_code == 403
            admin.patch(f"/admin/keys/{key_id}", json={"disabled": False, "allowed_models": None})
            assert customer.get("/luma/generations/nope").status_code == 404
        assert admin.patch("/admin/keys/9999", json={"disabled": True}).status_code == 404


def test_a_new_price_holds_for_the_next_submit_without_a_restart(relay: Relay) -> None:
    with relay.admin() as admin, relay.client() as client:
        rule = {"model": "ray-v2", "resolution": "540p", "duration": "5s", "action": "generate", "credits": 7}
        assert admin.put("/admin/prices", json=rule).json() == {**rule, "unit": "task"}
        task = client.post("/luma/generations", json={"user_prompt": "cheap", "resolution": "540p"}).json()
        holds = admin.get("/admin/ledger", params={"task_id": task["id"], "kind": "hold"}).json()
        assert [h["amount"] for h in holds] == [-7]
        wait_for(client, task["id"], {"completed"})
        usage = admin.get("/admin/usage", params={"account": "demo"}).json()
        assert usage == [
            {
                "account": "demo",
                "model": "ray-v2",
                "tasks": {"pending": 0, "processing": 0, "completed": 1, "failed": 0},
                "credits_charged": 7,
                "credits_held": 0,
            }
        ]
        removed = admin.request(
            "DELETE", "/admin/prices", json={k: v for k, v in rule.items() if k != "credits"}
        )
        assert removed.status_code == 200
        assert {**rule, "unit": "task"} not in admin.get("/admin/prices").json()


def test_ledger_pagination_and_time_filters(relay: Relay) -> None:
    with relay.admin() as admin:
        admin.post("/admin/accounts", json={"name": "acme"})
        for amount in range(1, 6):
            admin.post("/admin/accounts/acme/topup", json={"amount": amount})
        page1 = admin.get("/admin/ledger", params={"account": "acme", "limit": 2}).json()
        page2 = admin.get("/admin/ledger", params={"account": "acme", "limit": 2, "offset": 2}).json()
        assert [r["amount"] for r in page1 + page2] == [5, 4, 3, 2]
        future = admin.get("/admin/ledger", params={"since": 4_102_444_800}).json()
        assert future == []
