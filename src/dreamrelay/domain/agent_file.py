"""A file a customer uploaded through the Agents API's Files API (one row of agent_files)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AgentFile:
    id: str  # public file id (uuid4), ImageRef.file_id
    account_id: int
    purpose: str  # input | reference
    state: str  # pending | ready | failed | deleted
    mime_type: str
    size_bytes: int  # declared (presigned) or received (inline)
    created_at: float
    filename: str | None = None
    user_id: str | None = None  # the customer's opaque end-user tag, echoed back
    storage_key: str | None = None  # where our media store keeps the bytes, once received
    upload_token: str | None = None  # secret of the presigned PUT URL; None once used
    upload_expires_at: float | None = None
    failure_reason: str | None = None
    expires_at: float | None = None  # customer-given TTL
    deleted_at: float | None = None


@dataclass(frozen=True)
class FilePage:
    """One page of a customer's files, newest first."""

    files: list[AgentFile]
    has_more: bool
    next_cursor: str | None
