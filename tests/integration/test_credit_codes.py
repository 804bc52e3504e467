"""Credit codes over HTTP: made by the operator, redeemed exactly once, refusals and throttling."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Relay, make_settings, start_relay

pytestmark = pytest.mark.both_stores

CODE = re.compile(r"^DRC(-[0-9A-HJKMNP-TV-Z]{4}){8}$")  # 32 Crockford symbols = 160 bits


def _make_codes(relay: Relay, **body: Any) -> dict[str, Any]:
    with relay.admin() as admin:
        response = admin.post("/admin/codes", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def _balance(relay: Relay, key: str | None = None) -> int:
    with relay.client(key) as client:
        return int(client.get("/account").json()["balance"])


def _ledger_balanced(relay: Relay) -> None:
    with relay.admin() as admin:
        assert admin.get("/admin/ledger/verify").json()["balanced"] is True


@pytest.fixture
def relay(tmp_path: Path) -> Any:
    with start_relay(make_settings(tmp_path, redeem_rpm=30)) as running:
        yield running


def test_a_code_adds_its_credits_once_through_the_ledger(relay: Relay) -> None:
    batch = _make_codes(relay, amount=250, count=3, note="launch promo")
    assert batch["count"] == 3 and len(batch["codes"]) == 3 and batch["amount"] == 250
    assert all(CODE.match(c["code"]) for c in batch["codes"])
    assert len({c["code"] for c in batch["codes"]}) == 3
    code = batch["codes"][0]["code"]
    before = _balance(relay)

    with relay.client() as client:
        redeemed = client.post("/account/redeem", json={"code": code.lower().replace("-", " ")})
        assert redeemed.status_code == 200, redeemed.text
        assert redeemed.json()["amount"] == 250 and redeemed.json()["balance"] == before + 250
        _error(client.post("/account/redeem", json={"code": code}), 409, "code_used")
        rows = client.get("/account/ledger", params={"kind": "redeem"}).json()
    assert [(r["kind"], r["amount"]) for r in rows] == [("redeem", 250)]
    assert _balance(relay) == before + 250
    _ledger_balanced(relay)

    with relay.admin() as admin:
        listed = admin.get("/admin/codes", params={"batch": batch["batch"]}).json()
        used = admin.get("/admin/codes", params={"status": "used"}).json()
    assert len(listed) == 3 and all("code" not in c and "code_hash" not in c for c in listed)
    assert [(c["status"], c["redeemed_by"]) for c in used] == [("used", "demo")]
    assert used[0]["redeemed_at"].endswith("Z") and used[0]["prefix"] == code[:8]
    assert used[0]["note"] == "launch promo"


def test_unknown_and_expired_codes_are_refused_and_change_nothing(relay: Relay) -> None:
    # Valid for a few seconds (room for the admin call on a loaded machine); expired by the time the
    # clock says so, which the test waits for below.
    expires_at = time.time() + 5
    expiring = _make_codes(relay, amount=40, count=1, expires_at=expires_at)["codes"][0]["code"]
    before = _balance(relay)
    with relay.client() as client:
        _error(client.post("/account/redeem", json={"code": "DRC-0000-0000"}), 404, "code_not_found")
        _error(client.post("/account/redeem", json={"code": "x" * 101}), 404, "code_not_found")
        for body in ("{}", "[]", '{"code": 5}', '{"code": ""}', "nope"):
            _error(client.post("/account/redeem", content=body), 400, "invalid_request")
        time.sleep(max(0.0, expires_at - time.time() + 0.1))
        _error(client.post("/account/redeem", json={"code": expiring}), 410, "code_expired")
    assert _balance(relay) == before
    with relay.admin() as admin:
        assert [c["status"] for c in admin.get("/admin/codes").json()] == ["expired"]
        _error(admin.post("/admin/codes", json={"amount": 0}), 400, "invalid_request")
        _error(admin.post("/admin/codes", json={"amount": 5, "count": 1001}), 400, "invalid_request")
        _error(admin.post("/admin/codes", json={"amount": 5, "expires_at": 1}), 400, "invalid_request")
        _error(admin.get("/admin/codes", params={"status": "odd"}), 400, "invalid_request")
    with httpx.Client(base_url=relay.url) as anonymous:
        _error(anonymous.post("/account/redeem", json={"code": expiring}), 401, "invalid_api_key")
        _error(anonymous.post("/admin/codes", json={"amount": 5}), 401, "invalid_admin_token")


def test_ten_concurrent_redemptions_credit_one_account_once(relay: Relay) -> None:
    code = _make_codes(relay, amount=1000, count=1)["codes"][0]["code"]
    keys = [relay.new_key("demo") for _ in range(5)] + [relay.new_key("rival") for _ in range(5)]
    before = {"demo": _balance(relay), "rival": _balance(relay, keys[-1])}
    start = threading.Barrier(len(keys))
    answers: list[httpx.Response] = []

    def redeem(key: str) -> None:
        with relay.client(key) as client:
            client.get("/account")  # connected and authenticated before the race
            start.wait()
            answers.append(client.post("/account/redeem", json={"code": code}))

    threads = [threading.Thread(target=redeem, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * 9, [a.text for a in answers]
    assert all(a.json()["error"]["code"] == "code_used" for a in answers if a.status_code == 409)
    after = {"demo": _balance(relay), "rival": _balance(relay, keys[-1])}
    gained = {name: after[name] - before[name] for name in after}
    assert sorted(gained.values()) == [0, 1000]
    with relay.admin() as admin:
        rows = admin.get("/admin/ledger", params={"kind": "redeem"}).json()
        winner = admin.get("/admin/codes").json()[0]["redeemed_by"]
    assert len(rows) == 1 and rows[0]["amount"] == 1000 and gained[winner] == 1000
    _ledger_balanced(relay)


def test_attempts_are_throttled_per_key_and_per_address(tmp_path: Path) -> None:
    with start_relay(make_settings(tmp_path, redeem_rpm=3)) as relay:
        other_keys = [relay.new_key("demo") for _ in range(4)]

        def attempt(key: str, address: str) -> httpx.Response:
            transport = httpx.HTTPTransport(local_address=address)
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=relay.url, headers=headers, transport=transport) as client:
                return client.post("/account/redeem", json={"code": "DRC-GUESS"})

        # One key from three addresses: its own bucket runs out.
        assert [attempt(relay.key, f"127.0.0.{n}").status_code for n in (2, 3, 4)] == [404] * 3
        throttled = attempt(relay.key, "127.0.0.5")
        _error(throttled, 429, "rate_limited")
        assert int(throttled.headers["Retry-After"]) >= 1
        # Many keys from one address: the address's bucket runs out.
        assert [attempt(k, "127.0.0.6").status_code for k in other_keys[:3]] == [404] * 3
        _error(attempt(other_keys[3], "127.0.0.6"), 429, "rate_limited")
        # A fresh key from a fresh address still gets through.
        assert attempt(other_keys[3], "127.0.0.7").status_code == 404
