"""Credit codes: the operator makes a batch, a customer redeems one, the balance rises exactly once.

A code is `DRC-` and 32 Crockford base32 symbols (160 random bits) in groups of four; only its SHA-256
is stored. Redemption attempts are rate-limited per key and per client address, so even a guessed
prefix gets nowhere. The ledger row (kind `redeem`) settles `code:<id>`, a unique column: the database
itself refuses a second credit for the same code, whatever the code path.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Protocol

from dreamrelay.domain import ranges
from dreamrelay.domain.errors import Conflict, Gone, InvalidRequest, NotFound, RateLimited
from dreamrelay.formats.own import iso_millis
from dreamrelay.services.admin_views import CodeBatch, CodeView, MadeCode, Redeemed
from dreamrelay.store import credit_codes as code_store
from dreamrelay.store import ledger

if TYPE_CHECKING:
    from dreamrelay.ratelimit import RateLimiter
    from dreamrelay.services.auth import Caller
    from dreamrelay.settings import Settings
    from dreamrelay.store.engine import Database


class Collaborators(Protocol):
    db: Database
    settings: Settings
    limiter: RateLimiter  # redeem attempts per key and address


ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
SYMBOLS = 32  # x 5 bits = 160 bits of randomness
PREFIX = "DRC"
MAX_CODE_CHARS = 100
MAX_BATCH = 1000
MAX_AMOUNT = 10**12
_NOT_CODE = re.compile(r"[^0-9A-Z]")


def new_code() -> str:
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(SYMBOLS))
    return "-".join([PREFIX, *(symbols[i : i + 4] for i in range(0, SYMBOLS, 4))])


def normalize(code: str) -> str:
    """What is hashed: upper case without separators, so `drc-ab12 …` and `DRC-AB12-…` are one code."""
    return _NOT_CODE.sub("", code.upper())


def hash_code(code: str) -> str:
    return hashlib.sha256(normalize(code).encode()).hexdigest()


def _iso(at: float | None) -> str | None:
    return iso_millis(at) if at is not None else None


def _view(row: code_store.CodeRow, now: float) -> CodeView:
    expired = row.expires_at is not None and row.expires_at <= now
    return CodeView(
        id=row.id,
        prefix=row.prefix,
        batch=row.batch,
        amount=row.amount,
        note=row.note,
        created_at=iso_millis(row.created_at),
        expires_at=_iso(row.expires_at),
        redeemed_at=_iso(row.redeemed_at),
        redeemed_by=row.redeemed_by,
        redeemed_key_id=row.redeemed_key_id,
        status="used" if row.redeemed_at is not None else "expired" if expired else "unused",
    )


# ---- the operator ------------------------------------------------------------------------------
async def create_codes(
    rt: Collaborators, *, amount: int, count: int, expires_at: float | None = None, note: str = ""
) -> CodeBatch:
    """A batch of `count` codes worth `amount` credits each; the codes are in this answer only."""
    if not 1 <= amount <= MAX_AMOUNT:
        raise InvalidRequest(f"amount must be 1-{MAX_AMOUNT}")
    if not 1 <= count <= MAX_BATCH:
        raise InvalidRequest(f"count must be 1-{MAX_BATCH}")
    now = time.time()
    if expires_at is not None:
        ranges.timestamp("expires_at", expires_at)
    if expires_at is not None and expires_at <= now:
        raise InvalidRequest("expires_at must be in the future")
    if len(note) > 500:
        raise InvalidRequest("note: at most 500 characters")
    batch = uuid.uuid4().hex[:12]
    codes = [new_code() for _ in range(count)]
    rows = [
        code_store.NewCode(
            code_hash=hash_code(code),
            prefix=code[:8],
            batch=batch,
            amount=amount,
            note=note,
            created_at=now,
            expires_at=expires_at,
        )
        for code in codes
    ]
    async with rt.db.transaction() as conn:
        ids = await code_store.insert_codes(conn, rows)
    return CodeBatch(
        batch=batch,
        amount=amount,
        count=count,
        expires_at=_iso(expires_at),
        note=note,
        codes=[MadeCode(id=i, code=c) for i, c in zip(ids, codes, strict=True)],
    )


async def list_codes(
    rt: Collaborators,
    *,
    batch: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[CodeView]:
    """Codes newest first: which were used, by which account and key, and when (never the codes)."""
    if status is not None and status not in code_store.STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(code_store.STATUSES)}")
    now = time.time()
    async with rt.db.reader() as conn:
        rows = await code_store.list_codes(
            conn, batch=batch, status=status, now=now, limit=limit, offset=offset
        )
    return [_view(row, now) for row in rows]


# ---- the customer ------------------------------------------------------------------------------
async def _throttle(rt: Collaborators, caller: Caller, client_ip: str) -> None:
    limit = rt.settings.redeem_rpm
    for bucket in (f"redeem:key:{caller.key_id}", f"redeem:ip:{client_ip}"):
        decision = await rt.limiter.hit(bucket, limit)
        if not decision.allowed:
            raise RateLimited("too many code redemptions; wait and try again", headers=decision.headers())


async def redeem(rt: Collaborators, caller: Caller, code: object, *, client_ip: str) -> Redeemed:
    """Add the code's credits to the caller's account, once: 404 unknown, 409 used, 410 expired."""
    await _throttle(rt, caller, client_ip)  # every attempt counts, good or bad
    if not isinstance(code, str) or not code.strip():
        raise InvalidRequest('send {"code": "DRC-…"}')
    if len(code) > MAX_CODE_CHARS:
        raise NotFound("no such credit code", code="code_not_found")
    digest, now = hash_code(code), time.time()
    async with rt.db.transaction() as conn:
        taken = await code_store.take(
            conn, digest, account_id=caller.account_id, key_id=caller.key_id, now=now
        )
        if taken is not None:
            code_id, amount = taken
            note = f"credit code {normalize(code)[:7]}… (#{code_id})"
            try:
                balance = await ledger.redeem(conn, caller.account_id, amount, code_id=code_id, note=note)
            except ledger.BalanceTooHigh as exc:  # the transaction rolls back: the code stays unused
                raise Conflict(
                    f"this code would take the balance above {ranges.MAX_CREDITS} credits",
                    code="balance_too_high",
                ) from exc
            return Redeemed(amount=amount, balance=balance, redeemed_at=iso_millis(now))
        found = await code_store.find(conn, digest)
    if found is None:
        raise NotFound("no such credit code", code="code_not_found")
    if found.redeemed_at is not None:
        raise Conflict("this credit code has been used already", code="code_used")
    raise Gone("this credit code has expired", code="code_expired")
