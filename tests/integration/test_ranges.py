"""Issue 12 item 2: every amount, price, cap, limit, id and timestamp has a range; numbers near 2^63 are a
400 and never reach the books, and the store itself refuses a balance or ledger row outside ±2^53."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from dreamrelay.cli import app as cli_app
from dreamrelay.runtime import Runtime
from tests.conftest import Relay, make_settings, start_relay
from tests.integration.test_console import signed_in

pytestmark = pytest.mark.both_stores

BIG = 2**63


def _error(answer: httpx.Response, status: int = 400, code: str = "invalid_request") -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()["error"]
    assert body["code"] == code, body
    return str(body["message"])


def _books_are_sound(relay: Relay, balance: int) -> None:
    with relay.admin() as admin, relay.client() as customer:
        verify = admin.get("/admin/ledger/verify")
        assert verify.status_code == 200 and verify.json()["balanced"] is True, verify.text
        account = customer.get("/account")
        assert account.status_code == 200 and account.json()["balance"] == balance
        assert isinstance(account.json()["balance"], int)
        shown = admin.get("/admin/accounts/demo")
        assert shown.status_code == 200 and shown.json()["balance"] == balance
    for secret, page in (
        (_admin_token(relay), "/console/admin/accounts/demo"),
        (relay.key, "/console/me/billing"),
    ):
        browser = signed_in(relay, secret)
        try:
            assert browser.get(page).status_code == 200
        finally:
            browser.close()
    # `dreamrelay ledger verify`, in this process (a CLI process start costs seconds on a busy machine).
    env = {"DREAMRELAY_DATA_DIR": str(relay.settings.data_dir)}
    if relay.settings.database_url:
        env["DREAMRELAY_DATABASE_URL"] = relay.settings.database_url
    cli = CliRunner().invoke(cli_app, ["ledger", "verify", "--json"], env=env)
    assert cli.exit_code == 0 and cli.exception is None, cli.output
    assert json.loads(cli.stdout)["balanced"] is True


def _admin_token(relay: Relay) -> str:
    with relay.admin() as admin:
        return str(admin.headers["Authorization"]).removeprefix("Bearer ")


def test_the_reproductions_of_the_issue_are_400_and_the_books_stay_sound(tmp_path: Path) -> None:
    with start_relay(make_settings(tmp_path)) as relay, relay.admin() as admin:
        start = relay.client().get("/account").json()["balance"]

        assert "10000000000000000" not in _error(
            admin.post("/admin/accounts/demo/topup", json={"amount": 9223372036854775807})
        )
        for amount in (BIG, -BIG, 2**70):
            _error(admin.post("/admin/accounts/demo/topup", json={"amount": amount}))
            _error(admin.post("/admin/accounts/demo/adjust", json={"amount": amount}))
        _error(admin.post("/admin/accounts", json={"name": "rich", "balance": BIG}))
        assert admin.get("/admin/accounts/rich").status_code == 404

        keys = admin.get("/admin/keys", params={"account": "demo"}).json()
        key_id = keys[0]["id"]
        message = _error(admin.patch(f"/admin/keys/{key_id}", json={"expires_at": 1e308}))
        assert "expires_at" in message
        assert "spend_cap" in _error(admin.patch(f"/admin/keys/{key_id}", json={"spend_cap": BIG}))
        _error(admin.post("/admin/keys", json={"account": "demo", "spend_cap": BIG}))
        _error(admin.post("/admin/keys", json={"account": "demo", "expires_at": 1e308}))
        _error(admin.patch(f"/admin/keys/{key_id}", json={"rpm": 2**31}))
        _error(admin.patch("/admin/keys/99999999999999999999", json={"disabled": True}))
        _error(admin.patch(f"/admin/keys/{-BIG}", json={"disabled": True}))
        assert admin.get("/admin/keys", params={"account": "demo"}).json() == keys  # nothing changed

        prices = admin.get("/admin/prices").json()
        _error(admin.put("/admin/prices", json={"model": "ray-v2", "credits": BIG}))
        _error(admin.put("/admin/prices", json={"model": "ray-v2", "credits": 10**9 + 1}))
        assert admin.get("/admin/prices").json() == prices

        _error(admin.get("/admin/ledger", params={"since": "1e308"}))
        _error(admin.get("/admin/tasks", params={"until": "inf"}))
        _error(admin.post("/admin/deliveries/replay", json={"ids": [BIG]}))

        # In range, yet above the ceiling of a balance: refused as a conflict, the books unchanged.
        top = admin.post("/admin/accounts/demo/topup", json={"amount": 10**15})
        _error(top, 409, "balance_too_high")
        assert (
            admin.post("/admin/accounts/demo/topup", json={"amount": 10**15 - start}).json()["balance"]
            == 10**15
        )
        _books_are_sound(relay, 10**15)


def test_the_store_refuses_balances_and_ledger_rows_out_of_range(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with start_relay(settings):
        pass

    async def attempt(statement: str) -> None:
        async with Runtime.from_settings(settings) as rt, rt.db.transaction() as conn:
            await conn.execute(text(statement))

    for statement in (
        "UPDATE accounts SET balance = balance + 9223372036854775807",
        "UPDATE accounts SET balance = 9007199254740993",
        "UPDATE accounts SET balance = -1",
        "INSERT INTO ledger (account_id, kind, amount, note, created_at) VALUES (1, 'topup', 1e19, '', 0)",
        "UPDATE prices SET credits = 9007199254740993",
        "UPDATE api_keys SET spend_cap = -5",
    ):
        with pytest.raises(DBAPIError):
            asyncio.run(attempt(statement))
    if settings.database_url is None:  # SQLite stores what it is given; the CHECK looks at the type
        for statement in (
            "UPDATE accounts SET balance = 1.5",
            "INSERT INTO ledger (account_id, kind, amount, note, created_at) VALUES (1, 'topup', 2.5, '', 0)",
        ):
            with pytest.raises(DBAPIError):
                asyncio.run(attempt(statement))
