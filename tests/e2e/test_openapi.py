"""/openapi.json tells the truth: schemathesis sends generated requests to every operation of a running
DreamRelay (bounded examples) and checks no 500, documented statuses, content types and bodies."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation.hypothesis.examples import generate_one
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import make_settings, start_relay

# On SQLite and on PostgreSQL: generated strings carry NUL and other characters PostgreSQL refuses.
pytestmark = pytest.mark.both_stores

EXAMPLES_PER_OPERATION = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _exercise(operation: Any, base_url: str, auth: dict[str, str], calls: Counter[int]) -> None:
    def check(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=base_url, headers=auth)
        calls[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=auth)

    # The documented examples first (each must answer as documented too), then generated cases.
    for strategy in operation.get_strategies_from_examples():
        check(generate_one(strategy))

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def exercise(case: schemathesis.Case[Any]) -> None:
        check(case)

    exercise()


def test_every_operation_answers_as_documented(tmp_path: Path) -> None:
    # Tasks stay queued upstream: generated submits cost no rendering.
    # Tasks never finish here: synchronous routes (generations_sync, AceData videos) wait 1 s at most.
    relay_settings = make_settings(tmp_path, sandbox_queued_seconds=600, sync_wait_seconds=1.0)
    with start_relay(relay_settings) as relay:
        raw = httpx.get(relay.url + "/openapi.json", timeout=30).json()
        schema = schemathesis.openapi.from_dict(raw)
        customer = {"Authorization": f"Bearer {relay.key}"}
        with relay.admin() as admin_client:
            admin = {"Authorization": admin_client.headers["Authorization"]}
        calls: Counter[int] = Counter()
        operations = 0

        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result
            operation = result.ok()
            operations += 1
            # The admin API gets the admin token; channels are left alone (their test calls base URLs).
            touches_channels = operation.path.startswith("/admin/channels") and operation.method != "get"
            auth = customer if touches_channels or not operation.path.startswith("/admin") else admin

            _exercise(operation, relay.url, auth, calls)

    print(f"schemathesis: {operations} operations, {sum(calls.values())} calls, statuses {dict(calls)}")
    assert operations >= 40
    assert sum(calls.values()) >= operations
    assert 500 not in calls
