"""Operator commands for upstream channels: `dreamrelay channels …`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from dreamrelay.admin_cli.common import JsonOption, ModelsOption, emit, rows, run
from dreamrelay.services import channel_admin

app = typer.Typer(help="Upstream channels.", no_args_is_help=True)


CHANNEL_COLUMNS = [
    "id",
    "name",
    "kind",
    "base_url",
    "priority",
    "weight",
    "enabled",
    "failures",
    "benched_until",
]


@app.command("add")
def channels_add(
    name: str,
    kind: Annotated[str, typer.Option(help="luma, relay, kling, luma-agents or sandbox.")],
    base_url: Annotated[str, typer.Option(help="The upstream's base URL.")] = "",
    secret_key: Annotated[str, typer.Option(help="The upstream API key (or set it via the admin API).")] = "",
    models: ModelsOption = None,
    priority: int = 0,
    weight: int = 1,
    concurrency: int = 16,
    media_networks: Annotated[
        str, typer.Option(help="CIDRs its media may come from although private (e.g. 10.0.0.0/8).")
    ] = "",
    as_json: JsonOption = False,
) -> None:
    """Add an upstream channel."""
    model_list = [m.strip() for m in models.split(",") if m.strip()] if models else None
    data = run(
        lambda rt: channel_admin.add_channel(
            rt,
            name=name,
            kind=kind,
            base_url=base_url,
            secret_key=secret_key,
            models=model_list,
            priority=priority,
            weight=weight,
            concurrency=concurrency,
            media_networks=media_networks,
        )
    )
    emit(data, as_json, lambda d: f"added channel {d['name']} ({d['kind']})")


@app.command("list")
def channels_list(as_json: JsonOption = False) -> None:
    """Channels with their health (secrets masked)."""
    data = run(channel_admin.list_channels)
    emit(data, as_json, lambda d: rows(d, CHANNEL_COLUMNS))


@app.command("test")
def channels_test(name: str, as_json: JsonOption = False) -> None:
    """Send one authenticated request to the channel (exit 1 if it fails)."""
    result: channel_admin.ProbeResult = run(lambda rt: channel_admin.test_channel(rt, name))
    emit(
        asdict(result),
        as_json,
        lambda _: (
            f"{result.channel}: {'ok' if result.ok else 'FAILED'} in {result.latency_ms} ms"
            + (f" ({result.error})" if result.error else "")
        ),
    )
    if not result.ok:
        raise typer.Exit(code=1)


@app.command("enable")
def channels_enable(name: str, as_json: JsonOption = False) -> None:
    """Enable a channel (also lifts a bench)."""
    data = run(lambda rt: channel_admin.update_channel(rt, name, {"enabled": True}))
    emit(data, as_json, lambda d: f"{d['name']} enabled")


@app.command("disable")
def channels_disable(name: str, as_json: JsonOption = False) -> None:
    """Stop routing new tasks to a channel (tasks already there are still followed)."""
    data = run(lambda rt: channel_admin.update_channel(rt, name, {"enabled": False}))
    emit(data, as_json, lambda d: f"{d['name']} disabled")
