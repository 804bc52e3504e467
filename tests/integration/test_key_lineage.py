"""Keys a customer makes stay below the key that made them (issue 26: items 1, 7, 8, 9 and 19-23).

Every test is an attack the issue reproduced, then shows it refused: spending through child keys, undoing
the operator's disable, managing keys above, surviving a parent's revocation, upscaling or adding audio
with another model, and bad `allowed_models`, `batch_envelope` and `action` values.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any

import httpx
import pytest

from tests.conftest import Relay
from tests.integration.test_account_keys import two_relays as two_relays  # the fixture, shared
from tests.integration.test_console import csrf, signed_in

pytestmark = pytest.mark.both_stores

PRICE = 10  # credits of one ray-flash-2 540p 5 s video, set by `priced`
VIDEO = {"user_prompt": "a paper boat", "model_name": "ray-flash-2", "resolution": "540p", "duration": "5s"}


def _error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


def _own_key_id(client: httpx.Client) -> int:
    return next(int(k["id"]) for k in client.get("/account/keys").json() if k["current"])


def _operator_sets(relay: Relay, key_id: int, **settings: Any) -> dict[str, Any]:
    with relay.admin() as admin:
        response = admin.patch(f"/admin/keys/{key_id}", json=settings)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _make(client: httpx.Client, **settings: Any) -> dict[str, Any]:
    made = client.post("/account/keys", json=settings)
    assert made.status_code == 201, made.text
    return dict(made.json())


def _spent(relay: Relay, key_id: int) -> int:
    with relay.admin() as admin:
        keys = admin.get("/admin/keys", params={"account": "demo"}).json()
    return int(next(k["spent"] for k in keys if k["id"] == key_id))


def _works(relay: Relay, key: str) -> int:
    with relay.client(key) as client:
        return client.get("/account").status_code


@pytest.fixture
def priced(relay: Relay) -> Relay:
    with relay.admin() as admin:
        rule = {"model": "ray-flash-2", "resolution": "540p", "duration": "5s", "action": "generate"}
        assert admin.put("/admin/prices", json={**rule, "credits": PRICE}).status_code == 200
    return relay


# ---- item 1: the spending cap ---------------------------------------------------------------------
def test_a_spent_key_cannot_make_a_child_to_spend_more(priced: Relay) -> None:
    relay = priced
    with relay.client() as client:
        root = _own_key_id(client)
    _operator_sets(relay, root, spend_cap=4 * PRICE)
    with relay.client() as client:
        for _ in range(2):
            assert client.post("/luma/generations", json=VIDEO).status_code == 200
        # A child gets at most what is left (20), and by default exactly that.
        _error(client.post("/account/keys", json={"spend_cap": 4 * PRICE}), 403, "above_your_limits")
        child = _make(client, name="child")
        assert child["spend_cap"] == 2 * PRICE and child["parent_id"] == root
    with relay.client(child["key"]) as client:
        grandchild = _make(client, name="grandchild")
        assert grandchild["spend_cap"] == 2 * PRICE
    with relay.client(grandchild["key"]) as client:
        assert client.post("/luma/generations", json=VIDEO).status_code == 200
    with relay.client(child["key"]) as client:
        assert client.post("/luma/generations", json=VIDEO).status_code == 200
        # What the keys below spent counts against every cap above: the root's cap is used up.
        _error(client.post("/luma/generations", json=VIDEO), 403, "forbidden")
    assert (_spent(relay, root), _spent(relay, child["id"]), _spent(relay, grandchild["id"])) == (40, 20, 10)
    with relay.client() as client:
        _error(client.post("/luma/generations", json=VIDEO), 403, "forbidden")
        # The attack: delete the spent child and make a fresh one. Nothing comes back.
        assert client.delete(f"/account/keys/{child['id']}").status_code == 204
        fresh = _make(client, name="fresh")
        assert fresh["spend_cap"] == 0
        _error(client.post("/account/keys", json={"spend_cap": 1}), 403, "above_your_limits")
        _error(client.patch(f"/account/keys/{fresh['id']}", json={"spend_cap": 1}), 403, "above_your_limits")
    with relay.client(fresh["key"]) as client:
        _error(client.post("/luma/generations", json=VIDEO), 403, "forbidden")
    assert _spent(relay, root) == 4 * PRICE
    with relay.client() as client:
        assert client.get("/account").json()["balance"] == 100_000 - 4 * PRICE


def test_concurrent_spending_through_many_children_stops_exactly_at_the_cap(priced: Relay) -> None:
    relay = priced
    with relay.client() as client:
        root = _own_key_id(client)
    _operator_sets(relay, root, spend_cap=5 * PRICE)
    with relay.client() as client:
        children = [_make(client, name=f"c{i}") for i in range(3)]
    assert all(c["spend_cap"] == 5 * PRICE for c in children)

    def submit(n: int) -> int:
        with relay.client(children[n % 3]["key"]) as client:
            return client.post("/luma/generations", json=VIDEO).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(submit, range(24)))
    assert sorted(statuses) == [200] * 5 + [403] * 19
    assert _spent(relay, root) == 5 * PRICE
    assert sum(_spent(relay, c["id"]) for c in children) == 5 * PRICE
    with relay.admin() as admin:
        holds = admin.get("/admin/ledger", params={"account": "demo", "kind": "hold"}).json()
        assert sum(-h["amount"] for h in holds) == 5 * PRICE
        assert admin.get("/admin/ledger/verify").json()["mismatches"] == []


# ---- item 7: the operator's disable ---------------------------------------------------------------
def test_the_customer_cannot_lift_the_operators_disable(relay: Relay) -> None:
    with relay.client() as client:
        child = _make(client, name="leaked")
    operator_view = _operator_sets(relay, child["id"], disabled=True)
    assert operator_view["disabled"] is True and operator_view["disabled_by_customer"] is False
    assert _works(relay, child["key"]) == 403
    with relay.client() as client:
        _error(
            client.patch(f"/account/keys/{child['id']}", json={"disabled": False}),
            403,
            "disabled_by_operator",
        )
        shown = next(k for k in client.get("/account/keys").json() if k["id"] == child["id"])
        assert (shown["disabled"], shown["disabled_by_operator"], shown["active"]) == (False, True, False)
        # The customer's own switch is theirs: turning it on and off leaves the operator's alone.
        assert client.patch(f"/account/keys/{child['id']}", json={"disabled": True}).status_code == 200
        _error(
            client.patch(f"/account/keys/{child['id']}", json={"disabled": False}),
            403,
            "disabled_by_operator",
        )
    assert _works(relay, child["key"]) == 403
    _operator_sets(relay, child["id"], disabled=False)
    assert _works(relay, child["key"]) == 403  # the customer's disable still stands
    with relay.client() as client:
        assert client.patch(f"/account/keys/{child['id']}", json={"disabled": False}).status_code == 200
    assert _works(relay, child["key"]) == 200


@pytest.mark.sqlite_only  # the console's pages over the same service
def test_the_console_shows_the_operators_disable_and_cannot_lift_it(relay: Relay) -> None:
    with relay.client() as client:
        child = _make(client, name="leaked")
    _operator_sets(relay, child["id"], disabled=True)
    with closing(signed_in(relay, relay.key)) as browser:
        page = browser.get("/console/me/keys")
        assert page.status_code == 200 and "⟦missing" not in page.text
        row = page.text.split(f'id="own-key-{child["id"]}"', 1)[1].split("</tr>", 1)[0]
        assert "disabled by the operator" in row and 'value="enable"' not in row
        assert 'name="batch_envelope"' not in page.text  # item 21: the operator's setting
        answer = browser.post(
            f"/console/me/keys/{child['id']}", data={"csrf": csrf(page), "action": "enable"}
        )
        assert answer.status_code == 303
        assert "only the operator can enable it" in browser.get(answer.headers["location"]).text
    assert _works(relay, child["key"]) == 403


# ---- item 8: a key manages only the keys below it -------------------------------------------------
def test_a_restricted_key_cannot_touch_keys_above_or_beside_it(relay: Relay) -> None:
    other_root = relay.new_key("demo")  # a second operator-issued key of the same account
    with relay.client() as client:
        root = _own_key_id(client)
        restricted = _make(client, name="restricted", rpm=30, allowed_models=["ray-v2"])
        sibling = _make(client, name="sibling")
    with relay.client(other_root) as client:
        other_root_id = _own_key_id(client)
    with relay.client(restricted["key"]) as client:
        mine = _make(client, name="below")
        assert [k["id"] for k in client.get("/account/keys").json()] == [restricted["id"], mine["id"]]
        for key_id in (root, sibling["id"], other_root_id):
            _error(client.delete(f"/account/keys/{key_id}"), 404, "key_not_found")
            _error(client.patch(f"/account/keys/{key_id}", json={"disabled": True}), 404, "key_not_found")
            _error(client.patch(f"/account/keys/{key_id}", json={"rpm": 1}), 404, "key_not_found")
        assert client.patch(f"/account/keys/{mine['id']}", json={"rpm": 2}).status_code == 200
        assert client.delete(f"/account/keys/{mine['id']}").status_code == 204
    with relay.client(other_root) as client:  # operator-issued keys do not manage each other
        _error(client.delete(f"/account/keys/{root}"), 404, "key_not_found")
        assert [k["id"] for k in client.get("/account/keys").json()] == [other_root_id]
    for key in (relay.key, sibling["key"], other_root):
        assert _works(relay, key) == 200
    with relay.client() as client:  # the root still manages everything it made
        listed = [k["id"] for k in client.get("/account/keys").json()]
        assert listed == [root, restricted["id"], sibling["id"]]


# ---- item 9: revocation takes the keys below along ------------------------------------------------
def test_disabling_or_deleting_a_key_stops_its_descendants(relay: Relay) -> None:
    with relay.client() as client:
        child = _make(client, name="child")
    with relay.client(child["key"]) as client:
        grandchild = _make(client, name="grandchild")
    with relay.client(grandchild["key"]) as client:
        great = _make(client, name="great-grandchild")
    keys = [child["key"], grandchild["key"], great["key"]]
    assert [_works(relay, k) for k in keys] == [200, 200, 200]  # each is in the key cache now
    _operator_sets(relay, child["id"], disabled=True)  # the operator revokes the leaked key
    assert [_works(relay, k) for k in keys] == [403, 403, 403]
    assert _works(relay, relay.key) == 200
    _operator_sets(relay, child["id"], disabled=False)
    assert [_works(relay, k) for k in keys] == [200, 200, 200]
    with relay.client() as client:  # the customer's own disable does the same
        assert client.patch(f"/account/keys/{grandchild['id']}", json={"disabled": True}).status_code == 200
        listed = {k["id"]: k for k in client.get("/account/keys").json()}
        assert listed[great["id"]]["active"] is False and listed[great["id"]]["disabled"] is False
        assert listed[great["id"]]["parent_id"] == grandchild["id"]
    assert [_works(relay, k) for k in keys] == [200, 403, 403]
    with relay.client() as client:
        assert client.delete(f"/account/keys/{child['id']}").status_code == 204
        assert [k["id"] for k in client.get("/account/keys").json()] == [_own_key_id(client)]
        _error(client.delete(f"/account/keys/{great['id']}"), 404, "key_not_found")
    assert [_works(relay, k) for k in keys] == [401, 401, 401]


@pytest.mark.sqlite_only  # the pair of servers shares PostgreSQL and Redis whichever store is chosen
def test_revoking_a_parent_holds_on_every_server_at_once(two_relays: tuple[Relay, Relay]) -> None:
    a, b = two_relays
    with a.client() as client:
        child = _make(client, name="leaked")
    with b.client(child["key"]) as client:
        grandchild = _make(client, name="made on b")
    with b.client(grandchild["key"]) as client:
        assert client.get("/account").status_code == 200  # B caches the grandchild
        assert client.get("/account").status_code == 200
    _operator_sets(a, child["id"], disabled=True)
    with b.client(grandchild["key"]) as client:
        _error(client.get("/account"), 403, "forbidden")
    _operator_sets(a, child["id"], disabled=False)
    with b.client(grandchild["key"]) as client:
        assert client.get("/account").status_code == 200
    with a.client() as client:
        assert client.delete(f"/account/keys/{child['id']}").status_code == 204
    with b.client(grandchild["key"]) as client:
        _error(client.get("/account"), 401, "invalid_api_key")


def test_a_line_of_keys_is_bounded(relay: Relay) -> None:
    key = relay.key
    for _ in range(7):  # the operator's key and seven below it
        with relay.client(key) as client:
            key = _make(client)["key"]
    with relay.client(key) as client:
        _error(client.post("/account/keys", json={}), 409, "key_depth_reached")


# ---- item 19: model rules on upscale and audio ----------------------------------------------------
def _finished(client: httpx.Client, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        task = client.get(f"/dream-machine/v1/generations/{task_id}").json()
        if task["state"] in ("completed", "failed"):
            return dict(task)
        time.sleep(0.1)
    raise AssertionError(f"{task_id} did not finish")


@pytest.mark.sqlite_only  # the rule is the route's, not the store's
def test_a_model_restriction_holds_for_upscale_and_audio(relay: Relay) -> None:
    with relay.client() as client:
        made = client.post(
            "/dream-machine/v1/generations",
            json={"prompt": "a kite", "model": "ray-flash-2", "resolution": "540p"},
        )
        assert made.status_code == 201, made.text
        video = _finished(client, made.json()["id"])
        assert video["state"] == "completed", video
        narrow = _make(client, name="ray-2 only", allowed_models=["ray-v2"])
        wide = _make(client, name="flash too", allowed_models=["ray-v2", "ray-flash-2"])
    upscale = (f"/dream-machine/v1/generations/{video['id']}/upscale", {"resolution": "720p"})
    audio = (f"/dream-machine/v1/generations/{video['id']}/audio", {"prompt": "waves"})
    with relay.client(narrow["key"]) as client:
        for path, body in (upscale, audio):
            refused = client.post(path, json=body)  # the official API's error: {"detail": "…"}
            assert refused.status_code == 403, refused.text
            assert "may not use model ray-flash-2" in refused.json()["detail"]
    with relay.client(wide["key"]) as client:
        for path, body in (upscale, audio):
            assert client.post(path, json=body).status_code == 200  # as the official API answers these


# ---- items 20 and 22: allowed_models names every model, within bounds ------------------------------
@pytest.mark.sqlite_only  # the check is the route's, not the store's
def test_allowed_models_name_photon_and_uni_and_are_bounded(relay: Relay) -> None:
    with relay.client() as client:
        photon_only = _make(client, allowed_models=["photon-1", "uni-1", "photon-1"])
        assert photon_only["allowed_models"] == ["photon-1", "uni-1"]  # named once
        for too_many in (["ray-v2"] * 33, ["ray-v2"] * 100_000):
            answer = client.post("/account/keys", json={"allowed_models": too_many})
            _error(answer, 400, "invalid_request")
            assert "allowed_models" in answer.json()["error"]["message"]
            assert len(answer.text) < 2000
        _error(client.post("/account/keys", json={"allowed_models": ["x" * 65]}), 400, "invalid_request")
        assert len(client.get("/account/keys").json()) == 2
    with relay.admin() as admin:
        _error(
            admin.post("/admin/keys", json={"account": "demo", "allowed_models": ["v"] * 33}),
            400,
            "invalid_request",
        )
        made = admin.post(
            "/admin/keys", json={"account": "demo", "allowed_models": ["uni-1-max", "photon-flash-1"]}
        )
        assert made.status_code == 201, made.text
    with relay.client(photon_only["key"]) as client:
        image = client.post(
            "/dream-machine/v1/generations/image", json={"prompt": "a lighthouse", "model": "photon-1"}
        )
        assert image.status_code == 201, image.text
        _error(client.post("/luma/generations", json=VIDEO), 403, "forbidden")
        flash = client.post(
            "/dream-machine/v1/generations/image", json={"prompt": "x", "model": "photon-flash-1"}
        )
        assert flash.status_code == 403 and "photon-flash-1" in flash.json()["detail"], flash.text


# ---- item 21: batch_envelope is the operator's -----------------------------------------------------
@pytest.mark.sqlite_only  # the schema's rule
def test_customers_cannot_set_the_batch_envelope_but_inherit_it(relay: Relay) -> None:
    with relay.client() as client:
        root = _own_key_id(client)
        _error(client.post("/account/keys", json={"batch_envelope": "newapi"}), 400, "invalid_request")
        _error(
            client.patch(f"/account/keys/{root}", json={"batch_envelope": "newapi"}), 400, "invalid_request"
        )
        task = client.post("/luma/generations", json=VIDEO).json()
    _operator_sets(relay, root, batch_envelope="newapi")
    with relay.client() as client:
        child = _make(client, name="inherits")
    assert child["batch_envelope"] == "newapi"
    with relay.client(child["key"]) as client:
        answer = client.post("/luma/tasks", json={"ids": [task["id"]]})
        assert answer.status_code == 200 and answer.json()["code"] == "success", answer.text


# ---- item 23: `action` that is not a string ---------------------------------------------------------
@pytest.mark.sqlite_only  # the route's parsing
def test_a_list_or_object_action_is_a_clear_400(relay: Relay) -> None:
    with relay.client() as client:
        for action in (["retrieve"], {"retrieve": 1}, None, 5, True):
            answer = client.post("/luma/tasks", json={"action": action, "id": "x"})
            _error(answer, 400, "invalid_request")
            assert "retrieve" in answer.json()["error"]["message"]
