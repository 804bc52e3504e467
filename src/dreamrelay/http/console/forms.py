"""Reading the console's forms and query strings into values the services take."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from dreamrelay.http.console.web import LARGEST_NUMBER, Form


def utc(value: str) -> float | None:
    """A datetime-local field (UTC) as a Unix time, or None."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def number(value: str | None) -> float | None:
    """A finite number from a query parameter, or None."""
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
