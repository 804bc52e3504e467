"""Operator commands for callback deliveries: `dreamrelay deliveries …`."""

from __future__ import annotations

from typing import Annotated

import typer

from dreamrelay.admin_cli.common import AccountOption, JsonOption, LimitOption, TaskOption, emit, rows, run
from dreamrelay.services import admin

app = typer.Typer(help="Callback deliveries.", no_args_is_help=True)


@app.command("list")
def deliveries_list(
    account: AccountOption = None,
    task: TaskOption = None,
    status: Annotated[str | None, typer.Option(help="pending, delivered or dead.")] = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
) -> None:
    """Callback events with their attempts."""
    data = run(
        lambda rt: admin.deliveries(
            rt, task_id=task, account=account, status=status, limit=limit, with_attempts=as_json
        )
    )
    columns = ["id", "task_id", "sequence", "state", "status", "attempts", "last_status", "last_error"]
    emit(data, as_json, lambda d: rows(d, columns))


@app.command("replay")
def deliveries_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Event ids.")] = None,
    account: AccountOption = None,
    task: Annotated[str | None, typer.Option("--task", help="Every event of this task.")] = None,
    status: Annotated[str | None, typer.Option(help="Every event in this status, e.g. dead.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Send events again, with their original webhook-id."""
    data = run(lambda rt: admin.replay(rt, event_ids=ids, task_id=task, account=account, status=status))
    emit(data, as_json, lambda d: f"{d['replayed']} events queued again")
