"""Idempotency-Key: one task per (account, key) for 24 hours; a repeat gets the first task back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from dreamrelay.domain.errors import Conflict, InvalidRequest
from dreamrelay.domain.task import Task
from dreamrelay.services.auth import Caller
from dreamrelay.store import idempotency as idempotency_store
from dreamrelay.store import tasks as task_store

if TYPE_CHECKING:
    from dreamrelay.store.engine import Database

IDEMPOTENCY_KEY_MAX_CHARS = 255


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key and the fingerprint of the request it was sent with."""

    key: str
    request_hash: str

    @classmethod
    def from_header(cls, header: str | None, operation: str, body: object) -> Idempotency | None:
        """From the header and the request's already parsed JSON body (None without the header)."""
        if header is None:
            return None
        key = header.strip()
        if not key or len(key) > IDEMPOTENCY_KEY_MAX_CHARS:
            raise InvalidRequest(f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX_CHARS} characters")
        canonical = orjson.dumps([operation, body], option=orjson.OPT_SORT_KEYS)
        return cls(key=key, request_hash=hashlib.sha256(canonical).hexdigest())


class Replay(Exception):
    """A concurrent request with the same key won the insert: its task is the answer."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id


async def replayed(db: Database, caller: Caller, idem: Idempotency) -> Task | None:
    """The task this key already made, if any; 409 when the key came with another request."""
    async with db.reader() as conn:
        remembered = await idempotency_store.find(conn, caller.account_id, idem.key)
        if remembered is None:
            return None
        if remembered.request_hash != idem.request_hash:
            raise Conflict(
                "this Idempotency-Key was used with a different request in the last 24 hours",
                code="idempotency_key_reused",
            )
        return await task_store.get_task(conn, remembered.task_id)
