"""Operator commands for credit codes: `dreamrelay codes …`."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from dreamrelay.admin_cli.common import JsonOption, LimitOption, emit, rows, run, when
from dreamrelay.services import credit_codes

app = typer.Typer(help="Credit codes (shown once, stored as hashes).", no_args_is_help=True)


_DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _expiry(value: str | None) -> float | None:
    """`30d`, `12h`, `90m` from now, or a time (ISO 8601 or unix seconds)."""
    if value is None:
        return None
    unit = _DURATION.get(value[-1:].lower())
    if unit is not None and value[:-1].replace(".", "", 1).isdigit():
        return time.time() + float(value[:-1]) * unit
    return when(value)


@app.command("create")
def codes_create(
    amount: Annotated[int, typer.Option(help="Credits each code adds.", min=1)],
    count: Annotated[int, typer.Option(help="How many codes.", min=1, max=1000)] = 1,
    expires: Annotated[
        str | None, typer.Option(help="Refused after: 30d, 12h, an ISO 8601 time or unix seconds.")
    ] = None,
    note: Annotated[str, typer.Option(help="Why (shown in the list).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Make a batch of credit codes; printed once, one per line (only their hashes are kept)."""
    expires_at = _expiry(expires)
    data = run(
        lambda rt: credit_codes.create_codes(rt, amount=amount, count=count, expires_at=expires_at, note=note)
    )
    emit(data, as_json, lambda d: "\n".join(c["code"] for c in d["codes"]))


@app.command("list")
def codes_list(
    batch: Annotated[str | None, typer.Option(help="Only this batch.")] = None,
    status: Annotated[str | None, typer.Option(help="unused, used or expired.")] = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
) -> None:
    """Codes: which were used, by which account and when."""
    data = run(lambda rt: credit_codes.list_codes(rt, batch=batch, status=status, limit=limit))
    columns = ["id", "prefix", "batch", "amount", "status", "expires_at", "redeemed_by", "redeemed_at"]
    emit(data, as_json, lambda d: rows(d, columns))
