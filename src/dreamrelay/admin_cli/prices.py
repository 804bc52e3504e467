"""Operator commands for the price list: `dreamrelay prices …`."""

from __future__ import annotations

from typing import Annotated

import typer

from dreamrelay.admin_cli.common import JsonOption, emit, rows, run
from dreamrelay.services import admin

app = typer.Typer(help="The price list (credits per model, resolution, duration, action).")


@app.command("list")
def prices_list(as_json: JsonOption = False) -> None:
    """The price list; the most specific rule wins, '*' matches anything."""
    data = run(admin.list_prices)
    emit(data, as_json, lambda d: rows(d, ["model", "resolution", "duration", "action", "credits", "unit"]))


@app.command("set")
def prices_set(
    model: str,
    credits: Annotated[int, typer.Argument(min=0)],
    resolution: str = "*",
    duration: str = "*",
    action: str = "*",
    unit: Annotated[str, typer.Option(help="task, or 1m_tokens: credits per million tokens used")] = "task",
    as_json: JsonOption = False,
) -> None:
    """Set a price; it holds for the next submit without a restart."""
    data = run(
        lambda rt: admin.set_price(
            rt,
            model=model,
            credits=credits,
            resolution=resolution,
            duration=duration,
            action=action,
            unit=unit,
        )
    )
    emit(
        data,
        as_json,
        lambda d: f"{d['model']} {d['resolution']} {d['duration']} {d['action']}: {credits} per {d['unit']}",
    )


@app.command("remove")
def prices_remove(
    model: str, resolution: str = "*", duration: str = "*", action: str = "*", as_json: JsonOption = False
) -> None:
    """Remove a price rule."""
    data = run(
        lambda rt: admin.remove_price(
            rt, model=model, resolution=resolution, duration=duration, action=action
        )
    )
    emit(data, as_json, lambda d: "removed")
