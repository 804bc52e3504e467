"""The console's forms (an urlencoded body as `Form`), and reading their fields and query strings into
values the services take."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request

from dreamrelay.domain.ids import ascii_int

LARGEST_NUMBER = 2**53 - 1  # fits every integer column and a browser's number
MAX_EXPIRY_DAYS = 3650  # of a customer's key or a credit code


class Form:
    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0].strip() if values else default

    def getlist(self, name: str) -> list[str]:
        return [v.strip() for v in self.fields.get(name, [])]

    def optional_int(self, name: str) -> int | None:
        text = self.get(name).replace(",", "").replace("_", "")
        if not text:
            return None
        negative = text.startswith("-")
        value = ascii_int(text[1:] if negative or text.startswith("+") else text)
        if value is None:
            raise FormError(name)
        value = -value if negative else value
        if abs(value) > LARGEST_NUMBER:
            raise FormError(name)
        return value

    def expires_at(self, name: str = "expires_days") -> float | None:
        """The moment `name` days (1 to MAX_EXPIRY_DAYS) from now; None when the field is empty."""
        days = self.optional_int(name)
        if days is None:
            return None
        if not 1 <= days <= MAX_EXPIRY_DAYS:
            raise FormError(name)
        return time.time() + days * 86400


class FormError(Exception):
    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


async def read_form(request: Request) -> Form:
    """An application/x-www-form-urlencoded body (our forms send nothing else)."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
        return Form(parse_qs(text, keep_blank_values=True, max_num_fields=200))
    except (UnicodeDecodeError, ValueError):  # not UTF-8, or more fields than any form of ours has
        return Form({})


def utc(value: str) -> float | None:
    """A datetime-local field (UTC) as a Unix time, or None."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def number(value: str | None) -> float | None:
    """A finite number from a query parameter (ASCII only: `float` reads other scripts' digits), or None."""
    if value and not value.isascii():
        return None
    try:
        found = float(value) if value else None
    except ValueError:
        return None
    return found if found is not None and math.isfinite(found) else None


def offset(value: str | None) -> int:
    return int(min(max(number(value) or 0, 0), LARGEST_NUMBER))


def key_settings(form: Form) -> dict[str, Any]:
    """An API key's settings as the operator's key forms give them."""
    models = [m for m in form.getlist("allowed_models") if m]
    return {
        "name": form.get("name"),
        "rpm": form.optional_int("rpm"),
        "max_in_flight": form.optional_int("max_in_flight"),
        "batch_rpm": form.optional_int("batch_rpm"),
        "batch_envelope": form.get("batch_envelope") or "bare",
        "spend_cap": form.optional_int("spend_cap"),
        "allowed_models": models or None,
    }


def took(task: dict[str, Any]) -> float | None:
    """Seconds from created to finished, from the ISO times the services return."""
    if not task.get("finished_at"):
        return None
    parse = datetime.fromisoformat
    return (parse(task["finished_at"]) - parse(task["created_at"])).total_seconds()
