"""Customers manage their own keys over HTTP: isolation, the operator's cap, limits never above theirs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Relay, make_settings, start_relay
from tests.support.services import REDIS_URL

pytestmark = pytest.mark.both_stores


def _keys(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/account/keys")
    assert response.status_code == 200, response.text
    return list(response.json())


def _own_key_id(client: httpx.Client) -> int:
    return next(int(k["id"]) for k in _keys(client) if k["current"])


def _limit_demo_key(relay: Relay, **limits: Any) -> int:
    with relay.client() as client:
        key_id = _own_key_id(client)
    with relay.admin() as admin:
        response = admin.patch(f"/admin/keys/{key_id}", json=limits)
    assert response.status_code == 200, response.text
    return key_id


def _error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_a_new_key_is_shown_once_inherits_the_operators_limits_and_works(relay: Relay) -> None:
    _limit_demo_key(
        relay, rpm=30, max_in_flight=2, batch_rpm=20, allowed_models=["ray-flash-2"], spend_cap=500
    )
    with relay.client() as client:
        created = client.post("/account/keys", json={"name": "ci runner"})
        assert created.status_code == 201, created.text
        key = created.json()
        assert key["key"].startswith("dr-") and len(key["key"]) >= 40
        assert key["name"] == "ci runner" and key["current"] is False and key["disabled"] is False
        inherited = {n: key[n] for n in ("rpm", "max_in_flight", "batch_rpm", "allowed_models", "spend_cap")}
        assert inherited == {
            "rpm": 30,
            "max_in_flight": 2,
            "batch_rpm": 20,
            "allowed_models": ["ray-flash-2"],
            "spend_cap": 500,
        }
        listed = _keys(client)
        assert [k["id"] for k in listed] == [_own_key_id(client), key["id"]]
        assert all("key" not in k and "key_hash" not in k for k in listed)  # shown once, never again
    with relay.client(key["key"]) as client:
        assert client.get("/account").json()["name"] == "demo"
        # The model restriction holds at submit time.
        refused = client.post("/luma/generations", json={"user_prompt": "a kite", "model_name": "ray-v2"})
        _error(refused, 403, "forbidden")
        accepted = client.post(
            "/luma/generations", json={"user_prompt": "a kite", "model_name": "ray-flash-2"}
        )
        assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize(
    "asked",
    [
        {"rpm": 31},
        {"rpm": 0},  # 0 = no limit: above any limit
        {"max_in_flight": 3},
        {"batch_rpm": None},  # null = the server's default (120), above 20
        {"allowed_models": ["ray-v2"]},
        {"allowed_models": None},  # every model
        {"spend_cap": 501},
        {"spend_cap": None},  # no cap
        {"expires_at": None},  # never expires, though the operator's key does
    ],
)
def test_a_customer_never_gets_more_than_the_operator_gave(relay: Relay, asked: dict[str, Any]) -> None:
    key_id = _limit_demo_key(
        relay,
        rpm=30,
        max_in_flight=2,
        batch_rpm=20,
        allowed_models=["ray-flash-2"],
        spend_cap=500,
        expires_at=time.time() + 3600,
    )
    with relay.client() as client:
        _error(client.post("/account/keys", json=asked), 403, "above_your_limits")
        made = client.post("/account/keys", json={"name": "lower", "rpm": 10}).json()
        # Nor by changing a key afterwards, the operator's key itself included.
        _error(client.patch(f"/account/keys/{made['id']}", json=asked), 403, "above_your_limits")
        _error(client.patch(f"/account/keys/{key_id}", json=asked), 403, "above_your_limits")
        assert len(_keys(client)) == 2
    with relay.admin() as admin:
        operator_view = admin.get("/admin/keys", params={"account": "demo"}).json()
    assert operator_view[0]["rpm"] == 30 and operator_view[0]["allowed_models"] == ["ray-flash-2"]


def test_lower_limits_are_accepted_and_enforced(relay: Relay) -> None:
    _limit_demo_key(relay, rpm=30)
    with relay.client() as client:
        made = client.post("/account/keys", json={"rpm": 2, "allowed_models": ["ray-v2"]})
        assert made.status_code == 201, made.text
        assert made.json()["rpm"] == 2 and made.json()["allowed_models"] == ["ray-v2"]
    with relay.client(made.json()["key"]) as client:
        statuses = [client.get("/account").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_the_operators_cap_on_keys_holds(relay: Relay) -> None:
    with relay.admin() as admin:
        changed = admin.patch("/admin/accounts/demo", json={"max_keys": 3})
        assert changed.status_code == 200 and changed.json()["max_keys"] == 3
        assert admin.get("/admin/accounts/demo").json()["max_keys"] == 3
        _error(admin.patch("/admin/accounts/demo", json={"max_keys": -1}), 400, "invalid_request")
    with relay.client() as client:
        assert client.post("/account/keys", json={}).status_code == 201
        assert client.post("/account/keys", json={}).status_code == 201
        _error(client.post("/account/keys", json={}), 409, "key_cap_reached")  # 3 with the operator's
        extra = _keys(client)[-1]["id"]
        assert client.delete(f"/account/keys/{extra}").status_code == 204
        assert client.post("/account/keys", json={}).status_code == 201
    with relay.admin() as admin:
        assert admin.patch("/admin/accounts/demo", json={"max_keys": 0}).status_code == 200
    with relay.client() as client:
        _error(client.post("/account/keys", json={}), 409, "key_cap_reached")
        assert len(_keys(client)) == 3


def test_a_customer_never_sees_or_touches_another_accounts_keys(relay: Relay) -> None:
    other = relay.new_key("other", balance=100)
    with relay.client() as client:
        demo_ids = [k["id"] for k in _keys(client)]
        made = client.post("/account/keys", json={"name": "mine"}).json()
    with relay.client(other) as client:
        theirs = _keys(client)
        assert len(theirs) == 1 and theirs[0]["id"] not in demo_ids
        for key_id in (*demo_ids, made["id"]):
            _error(client.patch(f"/account/keys/{key_id}", json={"disabled": True}), 404, "key_not_found")
            _error(client.delete(f"/account/keys/{key_id}"), 404, "key_not_found")
    with relay.client(made["key"]) as client:
        assert client.get("/account").status_code == 200  # untouched


def test_disable_expire_and_delete_take_effect_at_once(relay: Relay) -> None:
    with relay.client() as client:
        spare = client.post("/account/keys", json={"name": "spare"}).json()
        own = _own_key_id(client)
        _error(client.patch(f"/account/keys/{own}", json={"disabled": True}), 409, "key_in_use")
        _error(client.delete(f"/account/keys/{own}"), 409, "key_in_use")
    with relay.client(spare["key"]) as client:
        assert client.get("/account").status_code == 200  # now in the key cache
    with relay.client() as client:
        disabled = client.patch(f"/account/keys/{spare['id']}", json={"disabled": True, "name": "off"})
        assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    with relay.client(spare["key"]) as client:
        assert client.get("/account").json()["error"]["message"] == "this API key is disabled"
    with relay.client() as client:
        assert client.patch(f"/account/keys/{spare['id']}", json={"disabled": False}).status_code == 200
    with relay.client(spare["key"]) as client:
        assert client.get("/account").status_code == 200
    with relay.client() as client:
        assert client.delete(f"/account/keys/{spare['id']}").status_code == 204
        _error(client.delete(f"/account/keys/{spare['id']}"), 404, "key_not_found")
    with relay.client(spare["key"]) as client:
        _error(client.get("/account"), 401, "invalid_api_key")
    # A key valid for a few seconds (room for two calls on a loaded machine), used, then expired.
    expires_at = time.time() + 5
    with relay.client() as client:
        made = client.post("/account/keys", json={"name": "short", "expires_at": expires_at}).json()
    with relay.client(made["key"]) as client:
        assert client.get("/account").status_code == 200  # now in the key cache
        time.sleep(max(0.0, expires_at - time.time() + 0.1))
        assert client.get("/account").json()["error"]["message"] == "this API key has expired"


def test_bad_input_is_a_clear_error_never_a_500(relay: Relay) -> None:
    with relay.client() as client:
        for body in ("not json", "[]", '{"rpm": "fast"}', '{"rpm": -1}', '{"colour": "red"}', '{"name": 5}'):
            response = client.post("/account/keys", content=body)
            _error(response, 400, "invalid_request")
        _error(client.post("/account/keys", json={"allowed_models": ["sora"]}), 400, "invalid_request")
        _error(client.post("/account/keys", json={"expires_at": time.time() - 5}), 400, "invalid_request")
        _error(client.post("/account/keys", json={"name": "x" * 101}), 400, "invalid_request")
        for key_id in ("abc", "-1", "99999999999999999999", "1.5", "0"):
            assert client.patch(f"/account/keys/{key_id}", json={"name": "n"}).status_code == 404
            assert client.delete(f"/account/keys/{key_id}").status_code == 404
        _error(client.patch(f"/account/keys/{_own_key_id(client)}", json={}), 400, "invalid_request")
        _error(
            client.patch(f"/account/keys/{_own_key_id(client)}", json={"name": None}), 400, "invalid_request"
        )
    with httpx.Client(base_url=relay.url) as anonymous:
        _error(anonymous.get("/account/keys"), 401, "invalid_api_key")
        _error(anonymous.post("/account/keys", json={}), 401, "invalid_api_key")
        _error(anonymous.delete("/account/keys/1"), 401, "invalid_api_key")


@pytest.fixture
def two_relays(tmp_path: Path, pg_url: str, redis_ns: str) -> Iterator[tuple[Relay, Relay]]:
    """Two servers on one PostgreSQL database and one Redis namespace (two processes' worth of caches)."""
    shared = {
        "database_url": pg_url,
        "redis_url": REDIS_URL,
        "redis_prefix": redis_ns,
        "worker_enabled": False,
    }
    with start_relay(make_settings(tmp_path / "a", **shared)) as a:
        with start_relay(make_settings(tmp_path / "b", **shared), key=a.key) as b:
            yield a, b


@pytest.mark.sqlite_only  # the pair of servers shares PostgreSQL and Redis whichever store is chosen
def test_a_customers_key_change_holds_on_every_server_at_once(two_relays: tuple[Relay, Relay]) -> None:
    a, b = two_relays
    with a.client() as client:
        made = client.post("/account/keys", json={"name": "shared"}).json()
    with b.client(made["key"]) as client:
        assert client.get("/account").status_code == 200  # B caches the key
        assert client.get("/account").status_code == 200
    with a.client() as client:
        assert client.patch(f"/account/keys/{made['id']}", json={"disabled": True}).status_code == 200
    with b.client(made["key"]) as client:
        _error(client.get("/account"), 403, "forbidden")
    with a.client() as client:
        assert client.delete(f"/account/keys/{made['id']}").status_code == 204
    with b.client(made["key"]) as client:
        _error(client.get("/account"), 401, "invalid_api_key")
