"""Operator commands for the ledger: `dreamrelay ledger …`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dreamrelay.admin_cli.common import (
    AccountOption,
    JsonOption,
    LimitOption,
    SinceOption,
    TaskOption,
    emit,
    rows,
    run,
    when,
)
from dreamrelay.services import admin

app = typer.Typer(help="The ledger: every balance change.", no_args_is_help=True)


@app.command("list")
def ledger_list(
    account: AccountOption = None,
    task: TaskOption = None,
    kind: Annotated[str | None, typer.Option(help="A ledger kind, e.g. topup or redeem.")] = None,
    since: SinceOption = None,
    until: SinceOption = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
) -> None:
    """Ledger rows, newest first."""
    data = run(
        lambda rt: admin.ledger_entries(
            rt, account=account, task_id=task, kind=kind, since=when(since), until=when(until), limit=limit
        )
    )
    emit(
        data,
        as_json,
        lambda d: rows(d, ["id", "created_at", "account", "kind", "amount", "task_id", "note"]),
    )


@app.command("verify")
def ledger_verify(as_json: JsonOption = False) -> None:
    """Prove that every account's ledger sums to its balance and every key's in-flight number matches its
    tasks (exit 1 if not)."""
    data = run(admin.verify_ledger)

    def text(d: dict[str, Any]) -> str:
        lines = []
        if d["balanced"]:
            lines.append(f"ok: {d['accounts_checked']} accounts, every ledger sums to its balance")
        else:
            lines.append("MISMATCH:\n" + rows(d["mismatches"], ["account", "balance", "ledger_sum"]))
        if d["in_flight_mismatches"]:
            found = rows(d["in_flight_mismatches"], ["key_id", "kept", "counted"])
            lines.append("IN-FLIGHT NUMBER MISMATCH (the cap reads it):\n" + found)
        else:
            lines.append(f"ok: {d['keys_checked']} keys, every in-flight number matches its tasks")
        return "\n".join(lines)

    emit(data, as_json, text)
    if not data["balanced"] or data["in_flight_mismatches"]:
        raise typer.Exit(code=1)
