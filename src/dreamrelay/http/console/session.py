"""Console sessions: an HMAC-signed cookie that names who signed in, never the key or token itself.

The cookie holds the role (``anon``, ``admin`` or ``customer``), a random session id, the expiry and,
for a customer, the account and key ids; for an operator, a fingerprint of the admin token (so a new
token ends every operator session). It is signed with a secret made on first need and kept in
``<data_dir>/console_secret`` (mode 0600). CSRF tokens are HMACs of the session id: every form and
JSON POST must carry the one of its own session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import orjson

from dreamrelay.settings import Settings

COOKIE = "dr_console"
FLASH_COOKIE = "dr_flash"
LANG_COOKIE = "dr_lang"
COOKIE_PATH = "/console"
SIGNED_IN_SECONDS = 12 * 3600  # a sign-in lasts this long
ANON_SECONDS = 2 * 3600  # the sign-in form's own session
_VERSION = "v1"

Role = Literal["anon", "admin", "customer"]


def secret_path(settings: Settings) -> Path:
    return settings.data_dir / "console_secret"


def load_secret(settings: Settings) -> bytes:
    """The signing secret from the data directory; made (0600, atomically) on first need."""
    path = secret_path(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".console_secret.{secrets.token_hex(4)}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
        try:
            os.link(partial, path)  # fails if another process won the race: theirs is kept
        except FileExistsError:
            pass
        finally:
            partial.unlink()
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise RuntimeError(f"{path} holds no usable console secret; delete it to make a new one")
    return secret.encode()


def token_fingerprint(token: str) -> str:
    return hashlib.sha256(b"dreamrelay-console:" + token.encode()).hexdigest()[:24]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    role: Role
    sid: str
    expires_at: float
    account_id: int | None = None
    key_id: int | None = None
    admin_fp: str | None = None

    @classmethod
    def anonymous(cls) -> Session:
        return cls(role="anon", sid=secrets.token_urlsafe(18), expires_at=time.time() + ANON_SECONDS)

    @classmethod
    def operator(cls, admin_token: str) -> Session:
        return cls(
            role="admin",
            sid=secrets.token_urlsafe(18),
            expires_at=time.time() + SIGNED_IN_SECONDS,
            admin_fp=token_fingerprint(admin_token),
        )

    @classmethod
    def customer(cls, account_id: int, key_id: int) -> Session:
        return cls(
            role="customer",
            sid=secrets.token_urlsafe(18),
            expires_at=time.time() + SIGNED_IN_SECONDS,
            account_id=account_id,
            key_id=key_id,
        )

    def renewed(self) -> Session:
        return replace(self, expires_at=time.time() + SIGNED_IN_SECONDS)


class Signer:
    """Signs and checks the session cookie, the flash cookie and CSRF tokens with one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, purpose: str, data: bytes) -> bytes:
        return hmac.new(self._secret, purpose.encode() + b"\0" + data, hashlib.sha256).digest()

    # ---- generic signed values ------------------------------------------------------------------
    def sign(self, purpose: str, value: dict[str, Any]) -> str:
        payload = _b64(orjson.dumps(value))
        return f"{_VERSION}.{payload}.{_b64(self._mac(purpose, payload.encode()))}"

    def unsign(self, purpose: str, cookie: str | None) -> dict[str, Any] | None:
        if not cookie or len(cookie) > 4096:
            return None
        parts = cookie.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            return None
        _version, payload, signature = parts
        try:
            given = _unb64(signature)
        except ValueError:
            return None
        if not hmac.compare_digest(given, self._mac(purpose, payload.encode())):
            return None
        try:
            value = orjson.loads(_unb64(payload))
        except (ValueError, orjson.JSONDecodeError):
            return None
        return value if isinstance(value, dict) else None

    # ---- sessions --------------------------------------------------------------------------------
    def dump(self, session: Session) -> str:
        value = {
            "r": session.role,
            "s": session.sid,
            "e": int(session.expires_at),
            "a": session.account_id,
            "k": session.key_id,
            "t": session.admin_fp,
        }
        return self.sign("session", value)

    def load(self, cookie: str | None) -> Session | None:
        value = self.unsign("session", cookie)
        if value is None:
            return None
        try:
            session = Session(
                role=value["r"],
                sid=str(value["s"]),
                expires_at=float(value["e"]),
                account_id=value.get("a"),
                key_id=value.get("k"),
                admin_fp=value.get("t"),
            )
        except (KeyError, TypeError, ValueError):
            return None
        if session.role not in ("anon", "admin", "customer") or session.expires_at <= time.time():
            return None
        return session

    # ---- CSRF ----------------------------------------------------------------------------------
    def csrf_token(self, session: Session) -> str:
        return _b64(self._mac("csrf", session.sid.encode()))

    def check_csrf(self, session: Session | None, given: str | None) -> bool:
        if session is None or not given:
            return False
        return hmac.compare_digest(given.encode(), self.csrf_token(session).encode())
