"""The error tree: every error a customer can see, with its HTTP status and stable code."""

from __future__ import annotations


class DreamRelayError(Exception):
    """Base of every error rendered to a client. `code` is stable; `message` is for humans."""

    status = 500
    code = "internal_error"
    type = "api_error"
    # Set on errors that involve an upstream: what the customer reads instead of `message`, which may
    # name a channel, a host, a port or carry the upstream's own words (kept for the logs).
    public: str | None = None

    def __init__(
        self,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        if code is not None:
            self.code = code
        self.param = param  # the request field it is about, when one is (the OpenAI envelope shows it)


class InvalidRequest(DreamRelayError):
    status, code, type = 400, "invalid_request", "invalid_request_error"


class UpstreamRejected(InvalidRequest):
    """An upstream refused the request as invalid: the customer's 400, in our words only."""

    public = "the upstream refused this request"


class InvalidApiKey(DreamRelayError):
    status, code, type = 401, "invalid_api_key", "authentication_error"


class InsufficientBalance(DreamRelayError):
    status, code, type = 402, "insufficient_balance", "billing_error"


class Forbidden(DreamRelayError):
    status, code, type = 403, "forbidden", "permission_error"


class TaskNotFound(DreamRelayError):
    status, code, type = 404, "task_not_found", "not_found_error"


class NotFound(DreamRelayError):
    status, code, type = 404, "not_found", "not_found_error"


class UnsupportedRoute(DreamRelayError):
    """A method and path this relay does not serve (404 whether the path exists for other methods or not)."""

    status, code, type = 404, "unsupported_route", "not_found_error"


class TaskNotReady(DreamRelayError):
    status, code, type = 409, "task_not_ready", "conflict_error"


class RequestTimeout(DreamRelayError):
    """A request body that came too slowly (answered by the connection guard, http/protocol.py)."""

    status, code, type = 408, "request_timeout", "invalid_request_error"


class Conflict(DreamRelayError):
    status, code, type = 409, "conflict", "conflict_error"


class Gone(DreamRelayError):
    status, code, type = 410, "gone", "not_found_error"


class PayloadTooLarge(DreamRelayError):
    status, code, type = 413, "payload_too_large", "invalid_request_error"


class Unprocessable(DreamRelayError):
    """A combination of fields the API refuses (only the Agents API answers 422; the others say 400)."""

    status, code, type = 422, "unprocessable_request", "invalid_request_error"


class RangeNotSatisfiable(DreamRelayError):
    status, code, type = 416, "range_not_satisfiable", "invalid_request_error"


class RateLimited(DreamRelayError):
    status, code, type = 429, "rate_limited", "rate_limit_error"


class InternalError(DreamRelayError):
    status, code, type = 500, "internal_error", "api_error"


class UpstreamError(DreamRelayError):
    status, code, type = 502, "upstream_error", "upstream_error"
    public = "the upstream did not confirm the submission; nothing was charged"


class StorageUnavailable(DreamRelayError):
    status, code, type = 503, "storage_unavailable", "api_error"


class NoChannelAvailable(DreamRelayError):
    status, code, type = 503, "no_channel_available", "upstream_error"
    public = "no upstream can take this task right now; try again later"


class DatabaseUnavailable(DreamRelayError):
    """The database is restarting, gone, or locked by another process: nothing was done; try again."""

    status, code, type = 503, "database_unavailable", "api_error"
    RETRY_AFTER_SECONDS = 2

    def __init__(self) -> None:
        message = "the service is briefly unavailable; nothing was changed, try again"
        super().__init__(message, headers={"Retry-After": str(self.RETRY_AFTER_SECONDS)})
