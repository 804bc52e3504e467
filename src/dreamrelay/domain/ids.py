"""The id rule: what a task id (or any other opaque id a client sends, such as a callback token) may look
like. One definition, used before any store is touched: anything else is simply not found.

Ids are 1 to 64 characters of ASCII letters, digits, '-' and '_' (our task ids are UUIDs; tokens are
URL-safe base64). NUL, control characters, other alphabets and overlong strings never reach a query.
"""

from __future__ import annotations

import re

ID_MAX_CHARS = 64
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def shown(value: str) -> str:
    """The id as an error message may quote it: printable and short."""
    cut = value[:ID_MAX_CHARS]
    text = "".join(ch if ch.isprintable() else "?" for ch in cut)
    return text + ("…" if len(value) > ID_MAX_CHARS else "")


def has_control(text: str) -> bool:
    """A C0/C1 control character (NUL included) anywhere: never part of a path, query or id we serve."""
    return any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in text)


def ascii_int(text: str, max_digits: int = 18) -> int | None:
    """The non-negative integer `text` spells in ASCII digits (1 to `max_digits` of them), else None.

    The one parser of numbers taken from paths, queries, headers and signatures: `str.isdigit` and `int`
    accept other scripts' digits (`int("٣") == 3`, `"²".isdigit()` but `int("²")` raises), so a
    number a client sends is never checked with them.
    """
    if not 1 <= len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def is_ascii_token(text: str, max_chars: int = 256) -> bool:
    """A credential from a query string (a signature, a token): printable ASCII only, so comparing it
    with `hmac.compare_digest` can never raise."""
    return len(text) <= max_chars and text.isascii() and text.isprintable()
