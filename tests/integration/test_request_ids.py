"""Every answer and its log line carry the same request id, the 500 of an error nothing expected
included (it once said "request id -" and its log line had none)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dreamrelay import logs
from dreamrelay.services import admin
from tests.conftest import Relay, make_settings, start_relay

pytestmark = pytest.mark.both_stores


class Ids(logging.Handler):
    """Keeps (request id, message, has traceback) of each ERROR line, as the log formatter would see it."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[tuple[str, str, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((logs.request_id.get(), record.getMessage(), record.exc_info is not None))


@pytest.fixture
def relay(tmp_path: Path, store: str) -> Iterator[Relay]:
    with start_relay(make_settings(tmp_path)) as running:
        yield running


@pytest.fixture
def errors() -> Iterator[Ids]:
    handler = Ids()
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)


async def broken(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("a bug nothing expected")


@pytest.mark.parametrize("given", [None, "trace-me-42"])
def test_an_unexpected_error_answers_with_the_id_of_its_log_line(
    relay: Relay, errors: Ids, monkeypatch: pytest.MonkeyPatch, given: str | None
) -> None:
    monkeypatch.setattr(admin, "show_account", broken)
    headers = {"X-Request-Id": given} if given else {}
    with relay.client() as client:
        answer = client.get("/account", headers=headers)
        assert client.get("/account/keys").status_code == 200  # the process goes on serving
    assert answer.status_code == 500
    rid = answer.headers["x-request-id"]
    assert rid == given if given else re.fullmatch(r"[0-9a-f]{32}", rid)
    assert answer.json() == {
        "error": {
            "message": f"internal error (request id {rid}); the operator's logs have the details",
            "type": "api_error",
            "code": "internal_error",
        }
    }
    crashes = [line for line in errors.lines if "unhandled error" in line[1]]
    assert crashes == [(rid, "unhandled error on GET /account", True)]  # one line, with its traceback
    assert all(line_id != "-" for line_id, _message, _tb in errors.lines)


def test_every_answer_carries_an_id(relay: Relay) -> None:
    with relay.client() as client:
        answers = [
            client.get("/account"),  # the framework
            client.get("/luma/generations/none"),  # the lean path
            client.get("/nowhere"),  # no route
            client.post("/luma/generations", content=b"{"),  # bad input
        ]
    assert [a.status_code for a in answers] == [200, 404, 404, 400]
    assert all(re.fullmatch(r"[0-9a-f]{32}", a.headers["x-request-id"]) for a in answers)
