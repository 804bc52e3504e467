"""The JSON boundary of the admin and account routes: services answer with dataclasses
(services/admin_views.py), a route turns one into the JSON object it answers with.

`/openapi.json` documents these answers as free-form objects (`additionalProperties: true`), as it
always has; `JsonObject` is that documented type. `asdict` keeps the field order as key order and
None as null, so the bytes on the wire are those of the dicts the services used to return.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING

from dreamrelay.domain.json_object import JsonObject

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["JsonObject", "json_list", "json_of"]


def json_of(value: DataclassInstance) -> JsonObject:
    return asdict(value)


def json_list(values: Iterable[DataclassInstance]) -> list[JsonObject]:
    return [asdict(v) for v in values]
