"""Routes this relay does not serve answer a JSON 404 naming them, in the family of their prefix (never
a bare 405); tasks of a retired official model read through the official API parse in the SDK's types."""

from __future__ import annotations

import uuid

import lumaai
from lumaai.types import Generation

from tests.conftest import Relay
from tests.integration.test_client_shapes import dooy_wait

OFFICIAL = "/dream-machine/v1"


def test_unsupported_routes_are_json_404_in_the_prefix_family(relay: Relay) -> None:
    some_id = str(uuid.uuid4())
    own = [
        ("GET", "/luma/nothing-here"),
        ("DELETE", "/luma/tasks"),  # the path exists for POST only: still a 404, never a 405
        ("PUT", "/luma/generations"),
        ("GET", "/luma/generations/a/b/c"),
        ("POST", f"/luma/generations/{some_id}/teleport"),
        ("GET", "/nowhere"),
    ]
    official = [
        ("GET", f"{OFFICIAL}/generations/teleports/list"),
        ("POST", f"{OFFICIAL}/generations/{some_id}/hologram"),
        ("PUT", f"{OFFICIAL}/generations"),
        ("PATCH", f"{OFFICIAL}/generations/{some_id}"),
        ("GET", f"{OFFICIAL}/holograms"),
    ]
    with relay.client() as client:
        for method, path in own:
            answer = client.request(method, path, json={"x": 1} if method != "GET" else None)
            assert answer.status_code == 404, (method, path, answer.status_code)
            error = answer.json()["error"]
            assert error["code"] == "unsupported_route" and error["type"] == "not_found_error"
            assert f"{method} {path} is not supported by this relay" in error["message"]
        for method, path in official:
            answer = client.request(method, path, json={"x": 1} if method != "GET" else None)
            assert answer.status_code == 404, (method, path, answer.status_code)
            assert list(answer.json()) == ["detail"]
            assert f"{method} {path} is not supported by this relay" in answer.json()["detail"]
        agents = client.request("PATCH", "/agents/v1/teleports/x", json={"x": 1})
        assert agents.status_code == 404 and list(agents.json()) == ["detail"]  # the Agents API's shape
        assert "PATCH /agents/v1/teleports/x is not supported by this relay" in agents.json()["detail"]
        # Without a key too (nothing to authenticate against), and with a trailing slash.
        bare = client.get(f"{OFFICIAL}/generations/teleports/list/", headers={"Authorization": ""})
        assert bare.status_code == 404 and "is not supported by this relay" in bare.json()["detail"]


def test_ray_v1_task_reads_as_an_official_model_the_sdk_accepts(relay: Relay) -> None:
    with relay.client() as client:
        body = {"user_prompt": "old model", "model_name": "ray-v1"}
        task = client.post("/luma/generations", json=body).json()
        dooy_wait(client, task["id"])
        raw = client.get(f"{OFFICIAL}/generations/{task['id']}").json()
    assert raw["model"] == raw["request"]["model"] == "ray-2"
    Generation.model_validate(raw)  # the SDK's own types, strictly: ray-1-6 is not among them
    luma = lumaai.LumaAI(auth_token=relay.key, base_url=relay.url + OFFICIAL, max_retries=0)
    generation = luma.generations.get(task["id"])
    assert generation.state == "completed" and generation.request is not None
    assert generation.request.model == "ray-2"  # type: ignore[union-attr]
