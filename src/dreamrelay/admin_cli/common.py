"""What every operator command shares: running a service on a fresh runtime, printing a table or JSON,
reading a time, and the common options."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import typer

from dreamrelay.domain.errors import DreamRelayError
from dreamrelay.runtime import Runtime
from dreamrelay.services.admin_views import plain
from dreamrelay.settings import Settings
from dreamrelay.store import migrate

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
AccountOption = Annotated[str | None, typer.Option("--account", help="Only this account.")]
LimitOption = Annotated[int, typer.Option(help="At most this many rows.", min=1, max=100_000)]
TaskOption = Annotated[str | None, typer.Option("--task", help="Only this task.")]
NoteOption = Annotated[str, typer.Option(help="Why (kept in the ledger).")]
SinceOption = Annotated[str | None, typer.Option(help="From this time (ISO 8601 or unix seconds).")]
ModelsOption = Annotated[
    str | None, typer.Option("--models", help="Comma-separated models the key may use ('' = all).")
]


def run(work: Callable[[Runtime], Awaitable[Any]]) -> Any:
    """`work` on a runtime of this process's settings (migrated first); a service's refusal is one line and
    exit code 1."""

    async def on_runtime() -> Any:
        async with Runtime.from_settings(Settings()) as rt:
            await migrate.upgrade(rt.db)
            return plain(await work(rt))  # the services' dataclasses as JSON-ready data

    try:
        return asyncio.run(on_runtime())
    except DreamRelayError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(code=1) from None


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else text(data))


def when(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        typer.echo(f"error: {value!r} is neither ISO 8601 nor unix seconds", err=True)
        raise typer.Exit(code=1) from None


def rows(found: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain table of `columns`, or "(none)"."""
    if not found:
        return "(none)"
    table = [columns] + [["" if r.get(c) is None else str(r.get(c)) for c in columns] for r in found]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in table)
