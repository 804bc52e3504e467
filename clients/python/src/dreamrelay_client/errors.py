"""Typed errors: one class per status DreamRelay answers with, plus waiting and webhook failures."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from dreamrelay_client.models import Task


class DreamRelayError(Exception):
    """Base of every error this package raises."""


class APIError(DreamRelayError):
    """DreamRelay answered with an error: `status`, the stable `code`, and the human `message`."""

    def __init__(self, message: str, *, status: int, code: str, body: Any = None, headers: Any = None):
        super().__init__(f"{status} {code}: {message}")
        self.message = message
        self.status = status
        self.code = code
        self.body = body
        self.headers = dict(headers or {})


class BadRequest(APIError):
    """400: the request is invalid (it changed nothing)."""


class AuthenticationError(APIError):
    """401: missing or unknown API key."""


class InsufficientBalance(APIError):
    """402: the account cannot pay for this task; redeem a code or ask the operator for a top-up."""


class PermissionDenied(APIError):
    """403: the key is disabled, expired, or may not use this model (or grant these limits)."""


class NotFound(APIError):
    """404: unknown (or another account's) task, key or credit code."""


class Conflict(APIError):
    """409: e.g. `task_not_ready`, `code_used`, `key_cap_reached`, `key_in_use`."""


class Gone(APIError):
    """410: e.g. an expired credit code."""


class PayloadTooLarge(APIError):
    """413: an image or body over the server's limit."""


class RateLimited(APIError):
    """429 after the client's retries: wait `retry_after` seconds."""

    @property
    def retry_after(self) -> float:
        return retry_after(self.headers) or 1.0


class ServerError(APIError):
    """5xx: DreamRelay or its upstream failed (502 upstream_error, 503 no_channel_available, …)."""


class APIConnectionError(DreamRelayError):
    """No answer from DreamRelay (connection refused, reset, timed out) after the retries."""


class TaskFailed(DreamRelayError):
    """wait() saw the task end `failed`; `task.failure_reason` says why (its hold was refunded)."""

    def __init__(self, task: Task):
        super().__init__(f"task {task.id} failed: {task.failure_reason}")
        self.task = task


class WaitTimeout(DreamRelayError):
    """wait() gave up; `tasks` are the last states seen (the tasks themselves keep running)."""

    def __init__(self, tasks: list[Task], timeout: float):
        super().__init__(f"{len(tasks)} task(s) not finished after {timeout:g} s")
        self.tasks = tasks


class WebhookVerificationError(DreamRelayError):
    """A callback whose signature or timestamp does not check out: do not trust its body."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: AuthenticationError,
    402: InsufficientBalance,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: PayloadTooLarge,
    429: RateLimited,
}


def from_response(response: httpx.Response) -> APIError:
    """The typed error for an error response (DreamRelay's `{"error": {...}}` or `{"detail": ...}`)."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message, code = str(error.get("message", "")), str(error.get("code", "error"))
    elif isinstance(body, dict) and "detail" in body:
        message, code = str(body["detail"]), "error"
    else:
        message, code = str(body)[:500], "error"
    status = response.status_code
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else APIError)
    return cls(message, status=status, code=code, body=body, headers=response.headers)


def retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), if there is one."""
    value = {k.lower(): v for k, v in dict(headers or {}).items()}.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None
