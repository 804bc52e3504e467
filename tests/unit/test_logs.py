"""Log lines: JSON or readable, tied to their request and task, and never carrying a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from dreamrelay import logs


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    return stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_request_task_and_channel(captured: io.StringIO) -> None:
    token = logs.request_id.set("req-1")
    try:
        with logs.task_context("task-9", "luma-a"):
            logging.getLogger("dreamrelay.test").info("polled %s", "dreaming")
        logging.getLogger("dreamrelay.test").warning("outside")
    finally:
        logs.request_id.reset(token)
    first, second = lines(captured)
    assert first["message"] == "polled dreaming"
    assert (first["level"], first["logger"]) == ("INFO", "dreamrelay.test")
    assert (first["request_id"], first["task_id"], first["channel"]) == ("req-1", "task-9", "luma-a")
    assert second["request_id"] == "req-1" and "task_id" not in second and "channel" not in second
    assert isinstance(first["ts"], str)


def test_extra_wins_over_the_context(captured: io.StringIO) -> None:
    with logs.task_context("outer"):
        logging.getLogger("x").info("change", extra={"task_id": "inner"})
    assert lines(captured)[0]["task_id"] == "inner"


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("dr-" + "A" * 40, "dr-[redacted]"),
        ("dra-" + "b_c-" * 10, "dra-[redacted]"),
        ("Authorization: Bearer sk-live-abcdef123456", "Bearer [redacted]"),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_[redacted]"),
        ("http://relay/upstream/callbacks/abc-123/tok3n_v4lue?x=1", "/upstream/callbacks/abc-123/[redacted]"),
    ],
)
def test_secrets_never_reach_the_output(captured: io.StringIO, secret: str, shown: str) -> None:
    logging.getLogger("x").info("calling with %s", secret)
    text = captured.getvalue()
    assert shown in text
    assert secret.split()[-1].split("/")[-1].split("?")[0] not in text


def test_registered_secrets_are_hidden_in_exceptions_too(captured: io.StringIO) -> None:
    logs.register_secret("channel-key-0123456789")
    try:
        raise RuntimeError("upstream refused channel-key-0123456789")
    except RuntimeError:
        logging.getLogger("x").exception("failed")
    text = captured.getvalue()
    assert "channel-key-0123456789" not in text and "[redacted]" in text


def test_a_terminal_gets_readable_lines() -> None:
    stream = io.StringIO()  # not a TTY: auto means JSON
    logs.configure("auto", stream=stream)
    logging.getLogger("x").info("hello")
    assert json.loads(stream.getvalue())["message"] == "hello"
    stream = io.StringIO()
    logs.configure("text", stream=stream)
    with logs.task_context("t-1", "ch"):
        logging.getLogger("x").info("hello")
    assert stream.getvalue().rstrip().endswith("INFO x [task=t-1 ch=ch] hello")


def test_a_redacted_json_line_stays_json() -> None:
    """Redaction runs on the JSON line: a secret right before an escaped quote leaves the escape alone."""
    line = json.dumps(
        {"message": 'curl -H "Authorization: Bearer dr-secret-value-123" /upstream/callbacks/t/tok"'}
    )
    shown = json.loads(logs.redact(line))["message"]
    assert "secret-value" not in shown and "tok" not in shown.rsplit("/", 1)[-1]
    assert shown.endswith('/upstream/callbacks/t/[redacted]"')
