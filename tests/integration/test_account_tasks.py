"""GET /account/tasks: the caller's own video tasks, filtered by state, bounded, never a 500."""

from __future__ import annotations

import httpx

from tests.conftest import Relay


def test_only_the_callers_tasks_by_state_newest_first(relay: Relay) -> None:
    other = relay.new_key("other", balance=10_000)
    with relay.client() as client:
        stalled = client.post("/luma/generations", json={"user_prompt": "[sandbox:stall] a"}).json()
        newer = client.post("/luma/generations", json={"user_prompt": "[sandbox:stall] b"}).json()
    with relay.client(other) as client:
        theirs = client.post("/luma/generations", json={"user_prompt": "[sandbox:stall] c"}).json()
        assert [t["id"] for t in client.get("/account/tasks").json()["data"]] == [theirs["id"]]
    with relay.client() as client:
        page = client.get("/account/tasks", params={"state": "pending,processing"}).json()
        assert [t["id"] for t in page["data"]] == [newer["id"], stalled["id"]] and page["has_more"] is False
        assert set(page["data"][0]) >= {"id", "state", "created_at", "video", "request"}
        first = client.get("/account/tasks", params={"limit": 1}).json()
        assert [t["id"] for t in first["data"]] == [newer["id"]] and first["has_more"] is True
        assert client.get("/account/tasks", params={"state": "completed"}).json()["data"] == []


def test_bad_queries_are_400_and_strangers_401(relay: Relay) -> None:
    with relay.client() as client:
        for params in (
            {"state": "bogus"},
            {"state": "pending," * 10},
            {"limit": "0"},
            {"limit": "5000"},
            {"offset": "-1"},
            {"offset": "1e99"},
            {"limit": "x"},
        ):
            answer = client.get("/account/tasks", params=params)
            assert answer.status_code == 400, (params, answer.text)
            assert answer.json()["error"]["code"] == "invalid_request"
    with httpx.Client(base_url=relay.url) as anonymous:
        assert anonymous.get("/account/tasks").status_code == 401
