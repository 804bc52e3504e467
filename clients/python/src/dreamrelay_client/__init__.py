"""DreamRelay's Python client: submit, wait, download; typed tasks and errors; webhook verification."""

from dreamrelay_client.client import AsyncClient, Client
from dreamrelay_client.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequest,
    Conflict,
    DreamRelayError,
    Gone,
    InsufficientBalance,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServerError,
    TaskFailed,
    WaitTimeout,
    WebhookVerificationError,
)
from dreamrelay_client.models import Media, Task
from dreamrelay_client.webhooks import verify_webhook

__version__ = "0.1.0"
__all__ = [
    "APIConnectionError",
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequest",
    "Client",
    "Conflict",
    "DreamRelayError",
    "Gone",
    "InsufficientBalance",
    "Media",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "ServerError",
    "Task",
    "TaskFailed",
    "WaitTimeout",
    "WebhookVerificationError",
    "verify_webhook",
]
