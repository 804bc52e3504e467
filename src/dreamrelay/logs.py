"""Logging: JSON lines for machines, readable lines for people, and every line tied to its request and task.

`configure` picks the format (`auto`: JSON unless the log stream is a terminal). The request id (set by
`http.middleware.RequestId`), and the task id and channel (set by `task_context` wherever one task is
worked on) are context variables, so every line logged inside that work carries them, whichever module
logs it: `grep <task id>` follows one task from submit through polls, finishing and callbacks.

Secrets never reach the output: every line passes through `redact` (API keys, the admin token, Bearer
values, webhook secrets, the token in upstream-callback URLs, and any secret registered at start-up).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, TextIO

from pythonjsonlogger.orjson import OrjsonFormatter

LogFormat = Literal["auto", "json", "text"]

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
task_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)
channel: contextvars.ContextVar[str | None] = contextvars.ContextVar("channel", default=None)

CONTEXT_FIELDS = ("request_id", "task_id", "channel")
DROPPED_FIELDS = ("color_message",)  # uvicorn's copy of the message with terminal colours

# (what a line must contain for the pattern to be worth running; pattern; replacement)
_PATTERNS = (
    (("dr-", "dra-"), re.compile(r"\b(dra?-)[A-Za-z0-9_\-]{8,}"), r"\1[redacted]"),  # API keys, admin token
    # A value stops at a backslash too: redact runs on JSON lines, where `"` is escaped as `\"`.
    (("bearer", "Bearer", "BEARER"), re.compile(r"(?i)\b(bearer\s+)[^\s'\",\\]+"), r"\1[redacted]"),
    (("whsec_",), re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"), "whsec_[redacted]"),
    (
        ("/upstream/callbacks/",),
        re.compile(r"(/upstream/callbacks/[^/\s'\"\\]+/)[^/\s'\"?#\\]+"),
        r"\1[redacted]",
    ),
)
_ALL_TRIGGERS = tuple(t for triggers, _, _ in _PATTERNS for t in triggers)
_literal_secrets: set[str] = set()


def register_secret(secret: str) -> None:
    """A value (sandbox key, channel key…) that must never be printed, whatever its shape."""
    if len(secret) >= 8:
        _literal_secrets.add(secret)


def redact(text: str) -> str:
    for secret in _literal_secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    if not any(map(text.__contains__, _ALL_TRIGGERS)):
        return text  # most lines: no pattern can match
    for triggers, pattern, replacement in _PATTERNS:
        if any(trigger in text for trigger in triggers):
            text = pattern.sub(replacement, text)
    return text


@contextmanager
def task_context(task: str, channel_name: str | None = None) -> Iterator[None]:
    """Every line logged inside the block names `task` (and its channel, when known: given here, set
    inside the block, or inherited). Both are restored when the block ends."""
    task_token = task_id.set(task)
    channel_token = channel.set(channel_name if channel_name is not None else channel.get())
    try:
        yield
    finally:
        channel.reset(channel_token)
        task_id.reset(task_token)


class _Context(logging.Filter):
    """Puts the context variables on each record, unless the call passed them in `extra`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        if not hasattr(record, "task_id"):
            record.task_id = task_id.get()
        if not hasattr(record, "channel"):
            record.channel = channel.get()
        return True


class JsonLines(OrjsonFormatter):
    """One JSON object per line: ts, level, logger, message, request_id, task_id, channel (+ exc)."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
            timestamp=False,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message)
        for name in DROPPED_FIELDS:
            log_data.pop(name, None)
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value in (None, "-"):
                log_data.pop(name, None)
            else:
                log_data[name] = value

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """logging's own "2026-11-30 07:24:39,765", its seconds part formatted once per second."""
        return f"{_local_second(int(record.created))},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


@functools.lru_cache(maxsize=4)
def _local_second(epoch_second: int) -> str:
    return time.strftime(logging.Formatter.default_time_format, time.localtime(epoch_second))


class Readable(logging.Formatter):
    """For a terminal: time, level, logger, then [req … task … ch …] when known, then the message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"{label}={value}"
            for label, value in (
                ("req", getattr(record, "request_id", None)),
                ("task", getattr(record, "task_id", None)),
                ("ch", getattr(record, "channel", None)),
            )
            if value not in (None, "-")
        ]
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return redact(super().format(record))


def configure(
    log_format: LogFormat = "auto", *, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Root logging for a DreamRelay process (uvicorn's loggers propagate to it)."""
    out = stream or sys.stdout
    use_json = log_format == "json" or (log_format == "auto" and not out.isatty())
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLines() if use_json else Readable())
    handler.addFilter(_Context())
    # Fields no DreamRelay line shows, left uncollected (the Logging HOWTO's "Optimization"):
    # the caller's file and line, thread, process and multiprocessing names.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
