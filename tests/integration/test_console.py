"""The web console over plain HTTP: translations, sessions, CSRF, who may see what, operator actions.

The browser scenario is in test_console_browser.py; these are the rules a browser test would be slow
to cover one by one.
"""

from __future__ import annotations

import re
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx

from dreamrelay.http.console.i18n import EN, MISSING_MARK, ZH
from dreamrelay.local_secrets import ensure_admin_token
from tests.conftest import Relay, make_settings, start_relay
from tests.integration.test_callbacks import callback_settings, wait_settled
from tests.integration.test_callbacks import submit as submit_with_hook
from tests.support.paths import REPO
from tests.support.receiver import running_receiver

CONSOLE = REPO / "src" / "dreamrelay" / "http" / "console"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# Words that are the same in every language: names, code, units.
UNTRANSLATED_OK = {
    "DreamRelay",
    "Dream",
    "Relay",
    "EN",
    "中文",
    "curl",
    "Python",
    "UTC",
    "ms",
    "s",
    "video.mp4",
}


# ---- translations --------------------------------------------------------------------------------
def test_both_languages_have_the_same_keys_and_no_empty_string() -> None:
    assert set(EN) == set(ZH), {"only en": set(EN) - set(ZH), "only zh": set(ZH) - set(EN)}
    assert all(v.strip() for v in [*EN.values(), *ZH.values()])
    for key in EN:  # the same {placeholders} in both
        assert re.findall(r"{\w+}", EN[key]) == re.findall(r"{\w+}", ZH[key]), key


def test_every_key_the_console_names_exists() -> None:
    sources = [p.read_text() for p in [*CONSOLE.glob("*.py"), *(CONSOLE / "templates").glob("*.html")]]
    named = set()
    for text in sources:
        named |= set(re.findall(r"""t\(\s*['"]([a-z_]+\.[a-z_]+)['"]""", text))
        named |= set(re.findall(r"""['"]((?:flash|error|login|nav)\.[a-z_]+)['"]""", text))
    assert named, "the pattern found nothing"
    named -= {"error.html", "login.html"}  # template names, not keys
    assert named - set(EN) == set()


def test_templates_have_no_untranslated_text() -> None:
    """Text between tags, once Jinja is taken out, may only be punctuation and a few fixed words."""
    for template in (CONSOLE / "templates").glob("*.html"):
        text = template.read_text()
        text = re.sub(r"{#.*?#}|{%.*?%}|{{.*?}}", " ", text, flags=re.S)
        text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S)
        text = re.sub(r"<[^>]*>", " ", text, flags=re.S)
        words = set(re.findall(r"[A-Za-z\u4e00-\u9fff][\w.\-\u4e00-\u9fff]*", text))
        assert words <= UNTRANSLATED_OK, f"{template.name}: {sorted(words - UNTRANSLATED_OK)}"
        attributes = re.findall(
            r"""(?:placeholder|title|aria-label|alt)="([^"{]*[A-Za-z][^"{]*)\"""", template.read_text()
        )
        assert [a for a in attributes if a not in ("dr-… / dra-…", "https://…")] == [], template.name


# ---- helpers ---------------------------------------------------------------------------------------
def csrf(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


def signed_in(relay: Relay, secret: str) -> httpx.Client:
    browser = httpx.Client(base_url=relay.url, timeout=30)
    form = browser.get("/console/login")
    answer = browser.post("/console/login", data={"csrf": csrf(form), "secret": secret})
    assert answer.status_code == 303, answer.text
    return browser


def submit(browser: httpx.Client, prompt: str) -> dict[str, Any]:
    token = csrf(browser.get("/console/me/playground"))
    answer = browser.post(
        "/console/me/api/generations", json={"user_prompt": prompt}, headers={"X-CSRF-Token": token}
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def wait_for(browser: httpx.Client, task_id: str, states: tuple[str, ...]) -> dict[str, Any]:
    for _ in range(300):
        task: dict[str, Any] = browser.get(f"/console/me/api/generations/{task_id}").json()
        if task["state"] in states:
            return task
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} never reached {states}")


# ---- sessions and CSRF -------------------------------------------------------------------------------
def test_sign_in_cookies_csrf_and_redirects(relay: Relay) -> None:
    token, _ = ensure_admin_token(relay.settings)
    with httpx.Client(base_url=relay.url, timeout=30) as browser:
        form = browser.get("/console/login")
        cookie = form.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
        assert MISSING_MARK not in form.text

        # No CSRF token: never a sign-in, even with the right secret.
        refused = browser.post("/console/login", data={"secret": token})
        assert refused.status_code == 403 and "dr_console=v1" in refused.headers["set-cookie"]
        assert browser.get("/console/admin").status_code == 303

        wrong = browser.post("/console/login", data={"csrf": csrf(refused), "secret": "dr-nope"})
        assert wrong.status_code == 401 and EN["login.wrong"] in wrong.text

        # An open redirect is refused: `next` must be a console page of the signed-in role.
        ok = browser.post(
            "/console/login", data={"csrf": csrf(wrong), "secret": token, "next": "//evil.example/x"}
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/console/admin"
        assert token not in ok.headers["set-cookie"] and token not in ok.headers["location"]

        # Operator forms need the session's token; without it nothing changes.
        page = browser.get("/console/admin/accounts")
        assert browser.post("/console/admin/accounts", data={"name": "eve"}).status_code == 403
        other = browser.post("/console/admin/accounts", data={"name": "eve", "csrf": "v1.forged"})
        assert other.status_code == 403
        with relay.admin() as admin:
            assert admin.get("/admin/accounts/eve").status_code == 404
        made = browser.post("/console/admin/accounts", data={"name": "eve", "csrf": csrf(page)})
        assert made.status_code == 303 and made.headers["location"] == "/console/admin/accounts/eve"

        # The language is a plain preference cookie; pages follow it.
        browser.post("/console/lang", data={"csrf": csrf(page), "lang": "zh", "next": "/console/admin"})
        assert ZH["dash.title"] in browser.get("/console/admin").text

        browser.post("/console/logout", data={"csrf": csrf(page)})
        assert browser.get("/console/admin").status_code == 303


def test_the_console_is_same_origin_only_and_not_in_the_openapi(relay: Relay) -> None:
    with httpx.Client(base_url=relay.url, timeout=30) as client:
        preflight = client.options(
            "/console/me/api/generations",
            headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers
        paths = client.get("/openapi.json").json()["paths"]
        assert not [p for p in paths if p.startswith("/console")]
        page = client.get("/console/login")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"


# ---- customers ------------------------------------------------------------------------------------------
def test_a_customer_sees_only_their_own_account(relay: Relay) -> None:
    alice = signed_in(relay, relay.new_key("alice", balance=1000))
    bob_key = relay.new_key("bob", balance=1000)
    bob = signed_in(relay, bob_key)
    with closing(alice), closing(bob):
        task = submit(alice, "alice's secret boat")
        wait_for(alice, task["id"], ("completed",))
        assert alice.get(f"/console/me/tasks/{task['id']}").status_code == 200

        page = bob.get(f"/console/me/tasks/{task['id']}")
        assert page.status_code == 404 and "secret boat" not in page.text
        assert bob.get(f"/console/me/api/generations/{task['id']}").status_code == 404
        for path in ("/console/me", "/console/me/billing", "/console/me/callbacks"):
            answer = bob.get(path)
            assert (
                answer.status_code == 200
                and task["id"] not in answer.text
                and "secret boat" not in answer.text
            )
        # Operator pages are not a customer's.
        assert bob.get("/console/admin/tasks").status_code == 303

        # The JSON route wants the page's CSRF header; without it nothing is submitted.
        refused = bob.post("/console/me/api/generations", json={"user_prompt": "x"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
        assert bob.get("/console/me").text.count('class="tile') == 0

        # Disabling the key ends the console session at the next request.
        with relay.admin() as admin:
            key_id = admin.get("/admin/keys", params={"account": "bob"}).json()[0]["id"]
            assert admin.patch(f"/admin/keys/{key_id}", json={"disabled": True}).status_code == 200
        assert bob.get("/console/me").status_code == 303


# ---- operator actions ------------------------------------------------------------------------------------
def test_refund_ends_an_unfinished_task_and_gives_the_hold_back(relay: Relay) -> None:
    token, _ = ensure_admin_token(relay.settings)
    customer = signed_in(relay, relay.new_key("carol", balance=1000))
    operator = signed_in(relay, token)
    with closing(customer), closing(operator), relay.admin() as admin:
        task = submit(customer, "a boat that never arrives [sandbox:stall]")
        price = admin.get(f"/admin/tasks/{task['id']}").json()["price"]
        assert admin.get("/admin/accounts/carol").json()["balance"] == 1000 - price

        page = operator.get(f"/console/admin/tasks/{task['id']}")
        assert 'value="refund"' in page.text and 'value="repoll"' in page.text
        repolled = operator.post(
            f"/console/admin/tasks/{task['id']}", data={"csrf": csrf(page), "action": "repoll"}
        )
        assert repolled.status_code == 303
        refunded = operator.post(
            f"/console/admin/tasks/{task['id']}", data={"csrf": csrf(page), "action": "refund"}
        )
        assert refunded.status_code == 303
        after = operator.get(refunded.headers["location"])
        assert EN["flash.refunded"] in after.text and 'value="refund"' not in after.text

        shown = admin.get(f"/admin/tasks/{task['id']}").json()
        assert shown["state"] == "failed" and shown["failure_reason"] == "refunded by the operator"
        assert sorted(r["kind"] for r in shown["ledger"]) == ["hold", "release"]
        assert admin.get("/admin/accounts/carol").json()["balance"] == 1000
        again = admin.post(f"/admin/tasks/{task['id']}/refund")
        assert again.status_code == 409 and again.json()["error"]["code"] == "task_finished"
        assert admin.post("/admin/tasks/no-such-task/refund").status_code == 404
        assert admin.get("/admin/ledger/verify").json()["balanced"] is True

        # The explorer filters by state and channel.
        failed = operator.get("/console/admin/tasks", params={"state": "failed", "channel": "sandbox"})
        assert task["id"] in failed.text
        assert task["id"] not in operator.get("/console/admin/tasks", params={"state": "completed"}).text
        assert task["id"] not in operator.get("/console/admin/tasks", params={"channel": "nope"}).text


OPERATOR_PAGES = [
    "/console/admin",
    "/console/admin/accounts",
    "/console/admin/accounts/demo",
    "/console/admin/accounts/nobody",
    "/console/admin/channels",
    "/console/admin/prices",
    "/console/admin/tasks?state=bogus&since=not-a-date&offset=x",
    "/console/admin/tasks/" + "x" * 300,
]


def test_every_operator_page_renders_in_both_languages(relay: Relay) -> None:
    token, _ = ensure_admin_token(relay.settings)
    with closing(signed_in(relay, token)) as browser:
        for lang, path in [(lang, path) for lang in ("en", "zh") for path in OPERATOR_PAGES]:
            browser.cookies.set("dr_lang", lang, path="/console")
            page = browser.get(path)
            assert page.status_code in (200, 404), page.text
            assert MISSING_MARK not in page.text
            assert f'<html lang="{"zh-CN" if lang == "zh" else "en"}">' in page.text


def test_bad_form_input_gets_a_message_and_changes_nothing(relay: Relay) -> None:
    token, _ = ensure_admin_token(relay.settings)
    huge = str(10**30)
    with closing(signed_in(relay, token)) as browser, relay.admin() as admin:
        token_field = csrf(browser.get("/console/admin"))
        before = admin.get("/admin/accounts/demo").json(), admin.get("/admin/prices").json()
        for path, data in [
            ("/console/admin/accounts", {"name": "big", "balance": huge}),
            ("/console/admin/accounts/demo/balance", {"amount": huge, "op": "topup"}),
            ("/console/admin/accounts/demo/balance", {"amount": "-5", "op": "topup"}),
            ("/console/admin/accounts/demo/keys", {"rpm": "1.5"}),
            ("/console/admin/prices", {"model": "ray-v2", "credits": huge}),
            ("/console/admin/channels", {"name": "c", "kind": "relay", "priority": huge}),
        ]:
            answer = browser.post(path, data={"csrf": token_field, **data})
            assert answer.status_code == 303, (path, answer.text)
            page = browser.get(answer.headers["location"])
            assert 'class="flash error"' in page.text, path
        assert browser.post("/console/admin/keys/" + huge, data={"csrf": token_field}).status_code == 404
        for path in (
            "/console/admin/tasks?offset=" + huge,
            "/console/admin/tasks?offset=nan&since=9999-99-99",
        ):
            assert browser.get(path).status_code == 200
        assert (admin.get("/admin/accounts/demo").json(), admin.get("/admin/prices").json()) == before
        assert admin.get("/admin/accounts/big").status_code == 404
        assert [c["name"] for c in admin.get("/admin/channels").json()] == ["sandbox"]


def test_the_price_form_sets_seedance_by_the_million_tokens_and_kling_video_by_mode(relay: Relay) -> None:
    """Every priced model is in the form, with its unit: a Seedance rule per million tokens, a Kling video
    rule per mode and length; a made-up unit is a message and changes nothing."""
    token, _ = ensure_admin_token(relay.settings)
    seedance = {"model": "doubao-seedance-1-0-pro-250528", "resolution": "*", "duration": "*", "action": "*"}
    kling = {"model": "kling-v1-6", "resolution": "pro", "duration": "10s", "action": "*"}
    with closing(signed_in(relay, token)) as browser, relay.admin() as admin:
        page = browser.get("/console/admin/prices")
        for shown in ('<option value="1m_tokens">', "<option>kling-v1-6</option>", "<option>pro</option>"):
            assert shown in page.text
        token_field = csrf(page)
        for rule in ({**seedance, "credits": "700", "unit": "1m_tokens"}, {**kling, "credits": "300"}):
            answer = browser.post("/console/admin/prices", data={"csrf": token_field, **rule})
            assert answer.status_code == 303 and "error" not in answer.headers["location"]
        before = admin.get("/admin/prices").json()
        assert {**seedance, "credits": 700, "unit": "1m_tokens"} in before
        assert {**kling, "credits": 300, "unit": "task"} in before
        assert "/ 1M tokens" in browser.get("/console/admin/prices").text
        bad = {**kling, "credits": "1", "unit": "per_frame", "csrf": token_field}
        answer = browser.post("/console/admin/prices", data=bad)
        assert 'class="flash error"' in browser.get(answer.headers["location"]).text
        assert admin.get("/admin/prices").json() == before


def test_callback_deliveries_are_shown_and_replayed(tmp_path: Path) -> None:
    settings = callback_settings(tmp_path)
    with running_receiver() as receiver, start_relay(settings) as relay:
        token, _ = ensure_admin_token(settings)
        with closing(signed_in(relay, relay.key)) as customer, closing(signed_in(relay, token)) as operator:
            with relay.client() as client:
                task = submit_with_hook(client, receiver.url + "/hook")
            events = wait_settled(relay, task["id"])
            first = len(receiver.wait_for(len(events)))

            log = customer.get("/console/me/callbacks").text
            assert receiver.url + "/hook" in log and EN["delivery.delivered"] in log
            assert task["id"][:8] in customer.get(f"/console/me/tasks/{task['id']}").text

            page = operator.get(f"/console/admin/tasks/{task['id']}")
            replayed = operator.post(
                f"/console/admin/tasks/{task['id']}",
                data={"csrf": csrf(page), "action": "replay", "event": str(events[-1]["id"])},
            )
            assert EN["flash.replayed"] in operator.get(replayed.headers["location"]).text
            again = receiver.wait_for(first + 1)
            assert again[-1].headers["webhook-id"] == receiver.delivered()[first - 1].headers["webhook-id"]
            # An event of another task is refused, whatever id is posted.
            other = operator.post(
                "/console/admin/tasks/some-other-task",
                data={"csrf": csrf(page), "action": "replay", "event": str(events[-1]["id"])},
            )
            assert EN["error.not_found"] in operator.get(other.headers["location"]).text


def test_the_dashboard_counts_tasks_and_revenue_on_both_stores(tmp_path: Path, store_url: str | None) -> None:
    with start_relay(make_settings(tmp_path, database_url=store_url)) as relay:
        token, _ = ensure_admin_token(relay.settings)
        with closing(signed_in(relay, relay.new_key("dana", balance=1000))) as customer:
            done = submit(customer, "a kite over the sea")
            failed = submit(customer, "a kite that tears [sandbox:fail]")
            wait_for(customer, done["id"], ("completed",))
            wait_for(customer, failed["id"], ("failed",))
        with relay.admin() as admin:
            price = admin.get(f"/admin/tasks/{done['id']}").json()["price"]
            before = admin.get("/admin/usage").json()
        with closing(signed_in(relay, token)) as operator:
            page = operator.get("/console/admin").text
        stats = dict(re.findall(r'<div class="stat"><span>([^<]+)</span><b[^>]*>([^<]+)</b>', page))
        assert stats[EN["dash.tasks_24h"]] == "2"
        assert stats[EN["dash.success_rate"]] == "50.0 %"
        assert stats[EN["dash.revenue_24h"]] == stats[EN["dash.revenue_total"]] == f"{price:,}"
        assert sum(u["credits_charged"] for u in before) == price
        assert stats[EN["dash.median"]].endswith(" s")
        assert ">Completed 1</span>" in page.replace('<span class="key b-completed"></span>', "")
