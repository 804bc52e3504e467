"""The own-format API's rules: batch semantics, authentication, isolation, input checks, no 500s."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Relay
from tests.integration.test_luma_lifecycle import wait_for
from tests.support.media import picture

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "code"}, body
    found: dict[str, Any] = body["error"]
    return found


@pytest.fixture
def done_ids(relay: Relay) -> list[str]:
    """Three completed tasks of the demo account."""
    with relay.client() as client:
        ids = [
            client.post("/luma/generations", json={"user_prompt": f"clip {i}", "resolution": "540p"}).json()[
                "id"
            ]
            for i in range(3)
        ]
        for task_id in ids:
            assert wait_for(client, task_id, {"completed"})["state"] == "completed"
    return ids


def test_batch_keeps_order_drops_duplicates_and_foreign_ids(relay: Relay, done_ids: list[str]) -> None:
    other_key = relay.new_key("mallory", balance=1000)
    with relay.client(other_key) as other:
        foreign = other.post("/luma/generations", json={"user_prompt": "mine", "resolution": "540p"}).json()[
            "id"
        ]
    a, b, c = done_ids
    ids = [c, a, "not-a-uuid", str(uuid.uuid4()), foreign, a, b, "x" * 500]
    with relay.client() as client:
        response = client.post("/luma/tasks", json={"ids": ids})
        assert response.status_code == 200
        assert [t["id"] for t in response.json()] == [c, a, b]
        singles = [client.get(f"/luma/generations/{i}").json() for i in (c, a, b)]
        assert response.json() == singles
    with relay.client(other_key) as other:
        assert [t["id"] for t in other.post("/luma/tasks", json={"ids": ids}).json()] == [foreign]


def test_batch_input_rules(relay: Relay, done_ids: list[str]) -> None:
    with relay.client() as client:
        assert client.post("/luma/tasks", json={"ids": []}).json() == []
        as_text = client.post(
            "/luma/tasks", content=f'{{"ids": ["{done_ids[0]}"]}}', headers={"Content-Type": "text/plain"}
        )
        assert as_text.status_code == 200 and [t["id"] for t in as_text.json()] == [done_ids[0]]
        bad: object
        for bad in ({"ids": "abc"}, {"ids": [1, 2]}, {"id": []}, [done_ids[0]], {"ids": None}):
            response = client.post("/luma/tasks", json=bad)
            assert response.status_code == 400, bad
            assert error_of(response)["code"] == "invalid_request"
        too_many = client.post("/luma/tasks", json={"ids": [str(uuid.uuid4()) for _ in range(1001)]})
        assert too_many.status_code == 400
        exactly = client.post("/luma/tasks", json={"ids": done_ids * 334})
        assert exactly.status_code == 400  # 1002 ids, duplicates still count toward the cap
        limit = client.post("/luma/tasks", json={"ids": [str(uuid.uuid4()) for _ in range(997)] + done_ids})
        assert limit.status_code == 200 and [t["id"] for t in limit.json()] == done_ids
        assert client.post("/luma/tasks", content=b"{not json").status_code == 400


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer dr-unknown"},
        {"Authorization": "dr-no-scheme"},
    ],
)
def test_requests_without_a_valid_key_are_401(relay: Relay, headers: dict[str, str]) -> None:
    calls: list[tuple[str, str, Any]] = [
        ("POST", "/luma/generations", {"user_prompt": "x"}),
        ("GET", f"/luma/generations/{uuid.uuid4()}", None),
        ("POST", "/luma/tasks", {"ids": []}),
        ("POST", f"/luma/generations/{uuid.uuid4()}/extend", {"user_prompt": "x"}),
        ("GET", f"/luma/generations/{uuid.uuid4()}/download_video_url", None),
    ]
    for method, path, body in calls:
        response = httpx.request(method, relay.url + path, json=body, headers=headers)
        assert response.status_code == 401, (method, path)
        assert error_of(response)["code"] == "invalid_api_key"


def test_another_accounts_task_is_invisible(relay: Relay, done_ids: list[str]) -> None:
    task_id = done_ids[0]
    with relay.client(relay.new_key("eve")) as eve:
        for method, path, body in [
            ("GET", f"/luma/generations/{task_id}", None),
            ("GET", f"/luma/generations/{task_id}/download_video_url", None),
            ("POST", f"/luma/generations/{task_id}/extend", {"user_prompt": "steal"}),
        ]:
            response = eve.request(method, path, json=body)
            assert response.status_code == 404, path
            assert error_of(response)["code"] == "task_not_found"
        assert eve.post("/luma/tasks", json={"ids": [task_id]}).json() == []


def test_images_are_accepted_by_content_not_by_name(relay: Relay) -> None:
    jpeg = picture(64, 36, fmt="JPEG")
    png = picture(64, 36, fmt="PNG")
    with relay.client() as client:
        for data in (jpeg, png):
            for spelling in (
                base64.b64encode(data).decode(),
                "data:image/gif;base64," + base64.b64encode(data).decode(),
            ):
                response = client.post(
                    "/luma/generations",
                    json={"user_prompt": "ok", "image_url": spelling, "resolution": "540p"},
                )
                assert response.status_code == 200, response.text
        for bad in (GIF, b"garbage" * 10, b"\x89PNG\r\n\x1a\n" + b"\x00" * 40):
            response = client.post(
                "/luma/generations", json={"user_prompt": "no", "image_url": base64.b64encode(bad).decode()}
            )
            assert response.status_code == 400, bad[:10]
            assert error_of(response)["code"] == "invalid_request"
        for bad_text in ("not base64 at all!!", "data:image/png,rawdata", "ftp://example.com/a.png"):
            response = client.post("/luma/generations", json={"user_prompt": "no", "image_end_url": bad_text})
            assert response.status_code == 400, bad_text


def test_images_over_10_mb_are_413_and_body_limits_hold(relay: Relay) -> None:
    limit = 10 * 1024 * 1024
    over = b"\xff\xd8\xff" + b"\x00" * (limit + 1 - 3)
    with relay.client() as client:
        response = client.post(
            "/luma/generations", json={"user_prompt": "big", "image_url": base64.b64encode(over).decode()}
        )
        assert response.status_code == 413
        assert error_of(response)["code"] == "payload_too_large"
        huge = client.post("/luma/generations", content=b"{" + b" " * (31 * 1024 * 1024) + b"}")
        assert huge.status_code == 413

        def chunks() -> Any:
            for _ in range(40):
                yield b" " * (1024 * 1024)

        streamed = client.post("/luma/generations", content=chunks())  # no Content-Length
        assert streamed.status_code == 413


def test_validation_errors_are_400_with_a_message_and_store_nothing(relay: Relay) -> None:
    bad_bodies: list[Any] = [
        {},
        {"user_prompt": ""},
        {"user_prompt": "x" * 5001},
        {"user_prompt": 42},
        {"user_prompt": "x", "aspect_ratio": "2:1"},
        {"user_prompt": "x", "model_name": "ray-v9"},
        {"user_prompt": "x", "model_name": "ray-v1", "resolution": "1080p"},
        {"user_prompt": "x", "duration": "7s"},
        {"user_prompt": "x", "loop": "yes"},
        {"user_prompt": "x", "notify_hook": "http://127.0.0.1/hook"},
        [{"user_prompt": "x"}],
        "just a string",
    ]
    with relay.client() as client:
        for body in bad_bodies:
            response = client.post("/luma/generations", json=body)
            assert response.status_code == 400, (
                body if not isinstance(body, dict) else list(body),
                response.text,
            )
            assert error_of(response)["message"]
        assert client.post("/luma/generations", content=b"not json").status_code == 400
        ok = client.post(
            "/luma/generations",
            json={"user_prompt": "y" * 5000, "unknown_field": 1, "duration": "5", "resolution": "540p"},
        )
        assert ok.status_code == 200
        listed = client.post("/luma/tasks", json={"ids": [ok.json()["id"]]}).json()
        assert len(listed) == 1


def test_unknown_routes_and_methods_answer_json(relay: Relay) -> None:
    with relay.client() as client:
        missing = client.get("/luma/nothing-here")
        assert missing.status_code == 404 and error_of(missing)["code"] == "unsupported_route"
        wrong = client.delete("/luma/tasks")
        assert wrong.status_code == 404 and error_of(wrong)["code"] == "unsupported_route"
        unknown_task = client.get(f"/luma/generations/{uuid.uuid4()}")
        assert unknown_task.status_code == 404 and error_of(unknown_task)["code"] == "task_not_found"


def test_cors_preflight_on_client_routes(relay: Relay) -> None:
    response = httpx.options(
        relay.url + "/luma/generations",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "https://app.example")


def test_health_and_request_id(relay: Relay) -> None:
    assert httpx.get(relay.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(relay.url + "/readyz").json() == {"status": "ready"}
    response = httpx.get(relay.url + "/healthz", headers={"X-Request-Id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    started = time.monotonic()
    assert httpx.get(relay.url + "/healthz").headers["x-request-id"]
    assert time.monotonic() - started < 5
