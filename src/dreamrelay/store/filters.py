"""Filters that several listings share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select


def in_window(
    query: Select[Any], column: ColumnElement[Any], since: float | None, until: float | None
) -> Select[Any]:
    """`query` kept to rows whose `column` (a time) is in [since, until); a None end is left open."""
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    return query
