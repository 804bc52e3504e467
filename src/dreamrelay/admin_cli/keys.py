"""Operator commands for API keys: `dreamrelay keys …`."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Any

import typer

from dreamrelay.admin_cli.common import AccountOption, JsonOption, ModelsOption, emit, rows, run
from dreamrelay.services import admin

app = typer.Typer(help="API keys (shown once, stored as hashes).", no_args_is_help=True)


class BatchEnvelope(StrEnum):
    bare = "bare"
    newapi = "newapi"


EnvelopeOption = Annotated[
    BatchEnvelope | None,
    typer.Option(
        "--batch-envelope",
        help="POST /luma/tasks answers a bare array (bare, the default) or new-api's envelope (newapi).",
    ),
]


def _limits(
    models: str | None,
    spend_cap: int | None,
    rpm: int | None,
    in_flight: int | None,
    batch_rpm: int | None,
    batch_envelope: BatchEnvelope | None = None,
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if models is not None:
        values["allowed_models"] = [m.strip() for m in models.split(",") if m.strip()] or None
    for name, value in (("spend_cap", spend_cap), ("rpm", rpm), ("max_in_flight", in_flight)):
        if value is not None:
            values[name] = value
    if batch_rpm is not None:
        values["batch_rpm"] = batch_rpm
    if batch_envelope is not None:
        values["batch_envelope"] = batch_envelope.value
    return values


@app.command("create")
def keys_create(
    account: Annotated[str, typer.Option("--account", help="Account the key belongs to.")],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    models: ModelsOption = None,
    spend_cap: Annotated[int | None, typer.Option(help="Credits this key may spend in all.")] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute (0 = no limit).")] = None,
    in_flight: Annotated[int | None, typer.Option(help="Tasks in flight at once (0 = no limit).")] = None,
    batch_rpm: Annotated[int | None, typer.Option(help="Batch queries per minute (0 = no limit).")] = None,
    expires_in_days: Annotated[float | None, typer.Option(help="Stops working after this many days.")] = None,
    batch_envelope: EnvelopeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key; it is printed once and only its hash is kept."""
    limits = _limits(models, spend_cap, rpm, in_flight, batch_rpm, batch_envelope)
    if expires_in_days is not None:
        limits["expires_at"] = time.time() + expires_in_days * 86400
    data = run(lambda rt: admin.create_key(rt, account, name, **limits))
    emit(data, as_json, lambda d: d["key"])


@app.command("list")
def keys_list(account: AccountOption = None, as_json: JsonOption = False) -> None:
    """List keys (prefix only; the keys themselves are not stored)."""
    data = run(lambda rt: admin.list_keys(rt, account))
    columns = [
        "id",
        "prefix",
        "account",
        "name",
        "parent_id",
        "disabled",
        "active",
        "spent",
        "spend_cap",
        "rpm",
        "last_used_at",
    ]
    emit(data, as_json, lambda d: rows(d, columns))


def _update(key_id: int, values: dict[str, Any], as_json: bool) -> None:
    data = run(lambda rt: admin.update_key(rt, key_id, values))
    emit(data, as_json, lambda d: f"key {d['id']} ({d['prefix']}…) updated")


@app.command("disable")
def keys_disable(key_id: int, as_json: JsonOption = False) -> None:
    """Stop a key, and every key below it, at once in every process; only the operator lifts it."""
    _update(key_id, {"disabled": True}, as_json)


@app.command("enable")
def keys_enable(key_id: int, as_json: JsonOption = False) -> None:
    """Lift the operator's disable (a customer's own disable, or one above the key, still holds)."""
    _update(key_id, {"disabled": False}, as_json)


@app.command("limits")
def keys_limits(
    key_id: int,
    models: ModelsOption = None,
    spend_cap: Annotated[int | None, typer.Option(help="Credits this key may spend in all.")] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute (0 = no limit).")] = None,
    in_flight: Annotated[int | None, typer.Option(help="Tasks in flight at once (0 = no limit).")] = None,
    batch_rpm: Annotated[int | None, typer.Option(help="Batch queries per minute (0 = no limit).")] = None,
    batch_envelope: EnvelopeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set a key's models, limits and batch envelope (only the options given change)."""
    _update(key_id, _limits(models, spend_cap, rpm, in_flight, batch_rpm, batch_envelope), as_json)
