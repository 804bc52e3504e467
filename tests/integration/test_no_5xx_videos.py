"""No 5xx on /v1/videos (edits, extensions and remix included) under the integer probe and schemathesis,
with a real completed video to name: the whole-API probes (test_no_5xx_integers.py, e2e/test_openapi.py)
run with tasks that never finish, so there every edit, extension and remix stops at "not found" or "not
completed". Here half the generated requests name the caller's finished video instead.

After its video is made the probing account has no credits left: a request that passes every check ends
in a 402 at admission instead of a render per generated case (what follows admission is the functional
tests' subject)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from tests.conftest import Relay, make_settings, start_relay

pytestmark = [pytest.mark.both_stores, pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")]

LIMIT = 2**70
BOUNDARIES = [0, 5, 9, 2**31, 2**53 + 1, 2**63, -(2**63) - 1, LIMIT, -LIMIT]
PREFIX = "/v1/videos"
ACCOUNT = "probe-videos"


def _finished_video(relay: Relay) -> tuple[str, str]:
    """(a key of an account with one completed ray-flash-2 video and no credits left, that video's id)."""
    key = relay.new_key(ACCOUNT, balance=10_000)
    with openai.OpenAI(api_key=key, base_url=f"{relay.url}/v1", timeout=120) as client:
        video = client.videos.create_and_poll(
            prompt="a probe's parent",
            model="ray-flash-2",
            size="960x540",  # type: ignore[arg-type]
            poll_interval_ms=200,
        )
    assert video.status == "completed", video.error
    with relay.client(key) as own, relay.admin() as admin:
        left = own.get("/account").json()["balance"]
        answer = admin.post(f"/admin/accounts/{ACCOUNT}/adjust", json={"amount": -left, "note": "probe"})
        assert answer.status_code == 200, answer.text
        assert own.get("/account").json()["balance"] == 0
    return key, video.id


def _operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in openapi["paths"].items()
        if path.startswith(PREFIX)
        for method, operation in operations.items()
    ]


def _valid_body(path: str, video_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": "a probe"}
    if path.endswith(("/edits", "/extensions")):
        body["video"] = {"id": video_id}
    return body


def _integer_probe(raw: httpx.Client, openapi: dict[str, Any], video_id: str) -> tuple[int, list[str]]:
    """Every path, query and JSON spot of every /v1/videos operation, at the boundaries and at drawn
    integers; the others keep a valid value (the finished video's id where a video is named)."""
    spots: list[tuple[str, str, str, str]] = []
    for method, path, operation in _operations(openapi):
        spots += [(method, path, p["in"], p["name"]) for p in operation.get("parameters", [])]
        content = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if content:
            properties = content["schema"].get("properties", {})
            spots += [(method, path, "json", name) for name in properties]
            if "video" in properties:
                spots.append((method, path, "json", "video.id"))
    errors: list[str] = []
    calls = 0

    def probe(spot: tuple[str, str, str, str], number: int) -> None:
        nonlocal calls
        method, path, where, name = spot
        url = re.sub(r"{(\w+)}", lambda m: str(number) if where == "path" else video_id, path)
        params = {name: str(number)} if where == "query" else None
        body: dict[str, Any] | None = None
        if method == "post":
            body = _valid_body(path, video_id)
            if name == "video.id":
                body["video"] = {"id": number}
            elif where == "json":
                body[name] = number
        answer = raw.request(method.upper(), url, params=params, json=body)
        calls += 1
        if answer.status_code >= 500:
            errors.append(f"{method.upper()} {path} {where}:{name}={number} -> {answer.status_code}")

    for number in BOUNDARIES:
        for spot in spots:
            probe(spot, number)

    @settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(spots), st.integers(min_value=-LIMIT, max_value=LIMIT))
    def anywhere(spot: tuple[str, str, str, str], number: int) -> None:
        probe(spot, number)

    anywhere()
    return calls, errors


def _naming(video_id: str) -> Callable[[schemathesis.Case[Any], bool], schemathesis.Case[Any]]:
    """Put the finished video's id where a generated case names a video (when `real`)."""

    def name(case: schemathesis.Case[Any], real: bool) -> schemathesis.Case[Any]:
        if not real:
            return case
        if case.path_parameters and "video_id" in case.path_parameters:
            case.path_parameters["video_id"] = video_id
        if isinstance(case.body, dict):
            if "video" in case.body:
                case.body["video"] = {"id": video_id}
            if "video[id]" in case.body:
                case.body["video[id]"] = video_id
        return case

    return name


def test_v1_videos_never_answers_5xx_under_integers_and_schemathesis(tmp_path: Path) -> None:
    with start_relay(make_settings(tmp_path)) as relay:
        key, video_id = _finished_video(relay)
        openapi = httpx.get(relay.url + "/openapi.json", timeout=30).json()
        routes = {(method, path) for method, path, _ in _operations(openapi)}
        assert {("post", PREFIX), ("post", f"{PREFIX}/edits"), ("post", f"{PREFIX}/extensions")} <= routes
        assert ("post", f"{PREFIX}/{{video_id}}/remix") in routes
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=relay.url, headers=auth, timeout=60) as raw:
            integer_calls, integer_errors = _integer_probe(raw, openapi, video_id)
        statuses: Counter[int] = Counter()
        name = _naming(video_id)
        for result in schemathesis.openapi.from_dict(openapi).get_all_operations():
            assert isinstance(result, Ok), result
            operation = result.ok()
            if not operation.path.startswith(PREFIX):
                continue

            @settings(
                max_examples=25,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(), real=st.booleans())
            def exercise(case: schemathesis.Case[Any], real: bool) -> None:
                case = name(case, real)
                response = case.call(base_url=relay.url, headers=auth)
                statuses[response.status_code] += 1
                case.validate_response(
                    response,
                    checks=[not_a_server_error, status_code_conformance, content_type_conformance],
                    headers=auth,
                )

            exercise()
    print(
        f"/v1/videos: integer probe {integer_calls} calls, {len(integer_errors)} server errors; "
        f"schemathesis {sum(statuses.values())} calls, statuses {dict(statuses)}"
    )
    assert integer_errors == [], integer_errors[:20]
    assert not any(status >= 500 for status in statuses)
    assert statuses[402] > 0  # some generated requests passed every check up to the money
