"""Operator commands for tasks: `dreamrelay tasks …`."""

from __future__ import annotations

import json
from typing import Any

import typer

from dreamrelay.admin_cli.common import JsonOption, emit, rows, run
from dreamrelay.services import channel_admin

app = typer.Typer(help="Tasks: inspect and re-poll.", no_args_is_help=True)


@app.command("show")
def tasks_show(task_id: str, as_json: JsonOption = False) -> None:
    """A task: request, upstream id, channel, polls, ledger rows and deliveries."""
    data = run(lambda rt: channel_admin.show_task(rt, task_id))

    def text(d: dict[str, Any]) -> str:
        lines = [f"{k}: {d[k]}" for k in d if k not in ("ledger", "deliveries", "request", "object")]
        lines.append(f"request: {json.dumps(d['request'], ensure_ascii=False)}")
        lines.append("ledger:\n" + rows(d["ledger"], ["created_at", "kind", "amount"]))
        lines.append("deliveries:\n" + rows(d["deliveries"], ["sequence", "state", "status", "attempts"]))
        return "\n".join(lines)

    emit(data, as_json, text)


@app.command("repoll")
def tasks_repoll(task_id: str, as_json: JsonOption = False) -> None:
    """Ask upstream about an unfinished task now."""
    data = run(lambda rt: channel_admin.repoll(rt, task_id))
    emit(data, as_json, lambda d: f"task {d['id']} will be polled now")


@app.command("refund")
def tasks_refund(task_id: str, as_json: JsonOption = False) -> None:
    """End an unfinished task as failed; its held credits go back to the account."""
    data = run(lambda rt: channel_admin.refund(rt, task_id))
    emit(data, as_json, lambda d: f"task {d['id']} failed; {d['refunded']} credits released")
