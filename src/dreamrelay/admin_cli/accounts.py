"""Operator commands for customer accounts: `dreamrelay accounts …`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dreamrelay.admin_cli.common import JsonOption, LimitOption, NoteOption, emit, rows, run
from dreamrelay.services import admin

app = typer.Typer(help="Customer accounts and their balances.", no_args_is_help=True)


@app.command("create")
def accounts_create(
    name: str,
    balance: Annotated[int, typer.Option(help="Opening credits.", min=0)] = 0,
    as_json: JsonOption = False,
) -> None:
    """Create a customer account."""
    data = run(lambda rt: admin.create_account(rt, name, balance))
    emit(data, as_json, lambda d: f"created account {d['name']} (balance {d['balance']})")


@app.command("list")
def accounts_list(as_json: JsonOption = False, limit: LimitOption = 1000) -> None:
    """List accounts with their balances."""
    data = run(lambda rt: admin.list_accounts(rt, limit=limit))
    emit(data, as_json, lambda d: rows(d, ["id", "name", "balance", "created_at"]))


@app.command("show")
def accounts_show(name: str, as_json: JsonOption = False) -> None:
    """An account: balance, keys and task counts."""
    data = run(lambda rt: admin.show_account(rt, name))

    def text(d: dict[str, Any]) -> str:
        tasks = ", ".join(f"{k} {v}" for k, v in d["tasks"].items())
        return f"{d['name']}: balance {d['balance']}; tasks: {tasks}\n" + rows(
            d["keys"], ["id", "prefix", "name", "parent_id", "disabled", "active", "spent", "last_used_at"]
        )

    emit(data, as_json, text)


@app.command("topup")
def accounts_topup(
    name: str,
    amount: Annotated[int, typer.Argument(min=1)],
    note: NoteOption = "",
    as_json: JsonOption = False,
) -> None:
    """Add credits to an account."""
    _change_balance(name, amount, note, as_json)


@app.command("adjust")
def accounts_adjust(
    name: str,
    amount: Annotated[int, typer.Argument(help="Signed change, e.g. -- -500.")],
    note: NoteOption = "",
    as_json: JsonOption = False,
) -> None:
    """Correct a balance up or down (never below zero)."""
    _change_balance(name, amount, note, as_json)


def _change_balance(name: str, amount: int, note: str, as_json: bool) -> None:
    data = run(lambda rt: admin.change_balance(rt, name, amount, note))
    emit(data, as_json, lambda d: f"{d['account']}: {d['amount']:+d}, balance {d['balance']}")


@app.command("callback-secret")
def accounts_callback_secret(
    name: str,
    rotate: Annotated[
        bool, typer.Option(help="Make a new secret; the old one signs on for the grace.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show (or rotate) the account's callback signing secret."""
    data = run(lambda rt: admin.callback_secret(rt, name, rotate=rotate))
    emit(data, as_json, lambda d: d["secret"])


@app.command("max-keys")
def accounts_max_keys(
    name: str,
    max_keys: Annotated[int | None, typer.Argument(help="Keys it may hold; omit for the default.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Set how many API keys the customer may hold (self-service creates stop there)."""
    data = run(lambda rt: admin.set_max_keys(rt, name, max_keys))
    shown = "the server's default" if data["max_keys"] is None else data["max_keys"]
    emit(data, as_json, lambda d: f"{d['name']}: at most {shown} keys")
