"""The console's self-service pages: a customer's keys and code redemption, the operator's codes."""

from __future__ import annotations

import re
from contextlib import closing

import httpx

from tests.conftest import Relay
from tests.integration.test_console import csrf, signed_in

NEW_KEY = re.compile(r'<pre id="new-key"><code>(dr-[^<]+)</code>')
NEW_CODES = re.compile(r'<pre id="new-codes"><code>([^<]+)</code>')


def _operator(relay: Relay) -> httpx.Client:
    with relay.admin() as admin:
        token = admin.headers["Authorization"].removeprefix("Bearer ")
    return signed_in(relay, token)


def test_a_customer_makes_disables_and_deletes_keys_in_the_console(relay: Relay) -> None:
    with closing(signed_in(relay, relay.key)) as browser:
        page = browser.get("/console/me/keys")
        assert page.status_code == 200 and "⟦missing" not in page.text
        made = browser.post("/console/me/keys", data={"csrf": csrf(page), "name": "ci", "rpm": "50"})
        assert made.status_code == 200 and "⟦missing" not in made.text
        key = NEW_KEY.search(made.text)
        assert key, made.text[:2000]
        with relay.client(key.group(1)) as api:
            mine = [k for k in api.get("/account/keys").json() if k["current"]]
        assert mine[0]["name"] == "ci" and mine[0]["rpm"] == 50
        key_id = mine[0]["id"]
        token = csrf(browser.get("/console/me/keys"))
        above = browser.post("/console/me/keys", data={"csrf": token, "rpm": "0"})  # 0 = unlimited
        assert above.status_code == 303
        assert "cannot get more" in browser.get(above.headers["location"]).text
        browser.post(f"/console/me/keys/{key_id}", data={"csrf": token, "action": "disable"})
        with relay.client(key.group(1)) as api:
            assert api.get("/account").status_code == 403
        browser.post(f"/console/me/keys/{key_id}", data={"csrf": token, "action": "delete"})
        with relay.client(key.group(1)) as api:
            assert api.get("/account").status_code == 401
        assert (
            browser.post("/console/me/keys/abc", data={"csrf": token, "action": "delete"}).status_code == 404
        )
        assert (
            browser.post(f"/console/me/keys/{key_id}", data={"action": "delete"}).status_code == 403
        )  # no CSRF


def test_codes_made_by_the_operator_are_redeemed_once_in_the_console(relay: Relay) -> None:
    with closing(_operator(relay)) as operator:
        page = operator.get("/console/admin/codes")
        assert page.status_code == 200 and "⟦missing" not in page.text
        made = operator.post("/console/admin/codes", data={"csrf": csrf(page), "amount": "90", "count": "2"})
        assert made.status_code == 200
        found = NEW_CODES.search(made.text)
        assert found
        codes = found.group(1).split()
        assert len(codes) == 2 and all(c.startswith("DRC-") for c in codes)
        account = operator.get("/console/admin/accounts/demo")
        operator.post("/console/admin/accounts/demo/max_keys", data={"csrf": csrf(account), "max_keys": "4"})
    with relay.admin() as admin:
        assert admin.get("/admin/accounts/demo").json()["max_keys"] == 4
    with relay.client() as api:
        before = api.get("/account").json()["balance"]
    with closing(signed_in(relay, relay.key)) as browser:
        billing = browser.get("/console/me/billing")
        assert 'id="redeem-form"' in billing.text
        browser.post("/console/me/redeem", data={"csrf": csrf(billing), "code": codes[0]})
        again = browser.post("/console/me/redeem", data={"csrf": csrf(billing), "code": codes[0]})
        assert "used already" in browser.get(again.headers["location"]).text
    with relay.client() as api:
        assert api.get("/account").json()["balance"] == before + 90
    with closing(_operator(relay)) as operator:
        used = operator.get("/console/admin/codes", params={"status": "used"}).text
    assert used.count('id="code-') == 1 and ">demo</a>" in used
