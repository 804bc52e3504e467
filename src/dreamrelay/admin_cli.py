"""Operator commands (`dreamrelay accounts|keys|prices|ledger|usage|deliveries …`), over services.admin.

Each prints a short table, or JSON with --json; errors print one line and exit 1.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from dreamrelay.domain.errors import DreamRelayError
from dreamrelay.runtime import Runtime
from dreamrelay.services import admin, channel_admin, credit_codes
from dreamrelay.settings import Settings
from dreamrelay.store import migrate

accounts_app = typer.Typer(help="Customer accounts and their balances.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (shown once, stored as hashes).", no_args_is_help=True)
prices_app = typer.Typer(help="The price list (credits per model, resolution, duration, action).")
ledger_app = typer.Typer(help="The ledger: every balance change.", no_args_is_help=True)
deliveries_app = typer.Typer(help="Callback deliveries.", no_args_is_help=True)
channels_app = typer.Typer(help="Upstream channels.", no_args_is_help=True)
tasks_app = typer.Typer(help="Tasks: inspect and re-poll.", no_args_is_help=True)
codes_app = typer.Typer(help="Credit codes (shown once, stored as hashes).", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
AccountOption = Annotated[str | None, typer.Option("--account", help="Only this account.")]
LimitOption = Annotated[int, typer.Option(help="At most this many rows.", min=1, max=100_000)]
NoteOption = Annotated[str, typer.Option(help="Why (kept in the ledger).")]
SinceOption = Annotated[str | None, typer.Option(help="From this time (ISO 8601 or unix seconds).")]


def _run(work: Callable[[Runtime], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        async with Runtime.from_settings(Settings()) as rt:
            await migrate.upgrade(rt.db)
            return await work(rt)

    try:
        return asyncio.run(run())
    except DreamRelayError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(code=1) from None


def _emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else text(data))


def _when(value: str | None) -> float | None:
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


def _rows(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    table = [columns] + [["" if r.get(c) is None else str(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in table)


# ---- accounts ----------------------------------------------------------------------------------
@accounts_app.command("create")
def accounts_create(
    name: str,
    balance: Annotated[int, typer.Option(help="Opening credits.", min=0)] = 0,
    as_json: JsonOption = False,
) -> None:
    """Create a customer account."""
    data = _run(lambda rt: admin.create_account(rt, name, balance))
    _emit(data, as_json, lambda d: f"created account {d['name']} (balance {d['balance']})")


@accounts_app.command("list")
def accounts_list(as_json: JsonOption = False, limit: LimitOption = 1000) -> None:
    """List accounts with their balances."""
    data = _run(lambda rt: admin.list_accounts(rt, limit=limit))
    _emit(data, as_json, lambda d: _rows(d, ["id", "name", "balance", "created_at"]))


@accounts_app.command("show")
def accounts_show(name: str, as_json: JsonOption = False) -> None:
    """An account: balance, keys and task counts."""
    data = _run(lambda rt: admin.show_account(rt, name))

    def text(d: dict[str, Any]) -> str:
        tasks = ", ".join(f"{k} {v}" for k, v in d["tasks"].items())
        return f"{d['name']}: balance {d['balance']}; tasks: {tasks}\n" + _rows(
            d["keys"], ["id", "prefix", "name", "disabled", "spent", "last_used_at"]
        )

    _emit(data, as_json, text)


@accounts_app.command("topup")
def accounts_topup(
    name: str,
    amount: Annotated[int, typer.Argument(min=1)],
    note: NoteOption = "",
    as_json: JsonOption = False,
) -> None:
    """Add credits to an account."""
    _change_balance(name, amount, note, as_json)


@accounts_app.command("adjust")
def accounts_adjust(
    name: str,
    amount: Annotated[int, typer.Argument(help="Signed change, e.g. -- -500.")],
    note: NoteOption = "",
    as_json: JsonOption = False,
) -> None:
    """Correct a balance up or down (never below zero)."""
    _change_balance(name, amount, note, as_json)


def _change_balance(name: str, amount: int, note: str, as_json: bool) -> None:
    data = _run(lambda rt: admin.change_balance(rt, name, amount, note))
    _emit(data, as_json, lambda d: f"{d['account']}: {d['amount']:+d}, balance {d['balance']}")


@accounts_app.command("callback-secret")
def accounts_callback_secret(
    name: str,
    rotate: Annotated[
        bool, typer.Option(help="Make a new secret; the old one signs on for the grace.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show (or rotate) the account's callback signing secret."""
    data = _run(lambda rt: admin.callback_secret(rt, name, rotate=rotate))
    _emit(data, as_json, lambda d: d["secret"])


@accounts_app.command("max-keys")
def accounts_max_keys(
    name: str,
    max_keys: Annotated[int | None, typer.Argument(help="Keys it may hold; omit for the default.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Set how many API keys the customer may hold (self-service creates stop there)."""
    data = _run(lambda rt: admin.set_max_keys(rt, name, max_keys))
    shown = "the server's default" if data["max_keys"] is None else data["max_keys"]
    _emit(data, as_json, lambda d: f"{d['name']}: at most {shown} keys")


# ---- credit codes ------------------------------------------------------------------------------
_DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _expiry(value: str | None) -> float | None:
    """`30d`, `12h`, `90m` from now, or a time (ISO 8601 or unix seconds)."""
    if value is None:
        return None
    unit = _DURATION.get(value[-1:].lower())
    if unit is not None and value[:-1].replace(".", "", 1).isdigit():
        return time.time() + float(value[:-1]) * unit
    return _when(value)


@codes_app.command("create")
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
    data = _run(
        lambda rt: credit_codes.create_codes(rt, amount=amount, count=count, expires_at=expires_at, note=note)
    )
    _emit(data, as_json, lambda d: "\n".join(c["code"] for c in d["codes"]))


@codes_app.command("list")
def codes_list(
    batch: Annotated[str | None, typer.Option(help="Only this batch.")] = None,
    status: Annotated[str | None, typer.Option(help="unused, used or expired.")] = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
) -> None:
    """Codes: which were used, by which account and when."""
    data = _run(lambda rt: credit_codes.list_codes(rt, batch=batch, status=status, limit=limit))
    columns = ["id", "prefix", "batch", "amount", "status", "expires_at", "redeemed_by", "redeemed_at"]
    _emit(data, as_json, lambda d: _rows(d, columns))


# ---- keys --------------------------------------------------------------------------------------
ModelsOption = Annotated[
    str | None, typer.Option("--models", help="Comma-separated models the key may use ('' = all).")
]


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


@keys_app.command("create")
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
    data = _run(lambda rt: admin.create_key(rt, account, name, **limits))
    _emit(data, as_json, lambda d: d["key"])


@keys_app.command("list")
def keys_list(account: AccountOption = None, as_json: JsonOption = False) -> None:
    """List keys (prefix only; the keys themselves are not stored)."""
    data = _run(lambda rt: admin.list_keys(rt, account))
    columns = ["id", "prefix", "account", "name", "disabled", "spent", "spend_cap", "rpm", "last_used_at"]
    _emit(data, as_json, lambda d: _rows(d, columns))


def _update(key_id: int, values: dict[str, Any], as_json: bool) -> None:
    data = _run(lambda rt: admin.update_key(rt, key_id, values))
    _emit(data, as_json, lambda d: f"key {d['id']} ({d['prefix']}…) updated")


@keys_app.command("disable")
def keys_disable(key_id: int, as_json: JsonOption = False) -> None:
    """Stop a key working (within 30 s in every process)."""
    _update(key_id, {"disabled": True}, as_json)


@keys_app.command("enable")
def keys_enable(key_id: int, as_json: JsonOption = False) -> None:
    """Let a disabled key work again."""
    _update(key_id, {"disabled": False}, as_json)


@keys_app.command("limits")
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


# ---- prices ------------------------------------------------------------------------------------
@prices_app.command("list")
def prices_list(as_json: JsonOption = False) -> None:
    """The price list; the most specific rule wins, '*' matches anything."""
    data = _run(admin.list_prices)
    _emit(data, as_json, lambda d: _rows(d, ["model", "resolution", "duration", "action", "credits"]))


@prices_app.command("set")
def prices_set(
    model: str,
    credits: Annotated[int, typer.Argument(min=0)],
    resolution: str = "*",
    duration: str = "*",
    action: str = "*",
    as_json: JsonOption = False,
) -> None:
    """Set a price; it holds for the next submit without a restart."""
    data = _run(
        lambda rt: admin.set_price(
            rt, model=model, credits=credits, resolution=resolution, duration=duration, action=action
        )
    )
    _emit(data, as_json, lambda d: f"{d['model']} {d['resolution']} {d['duration']} {d['action']}: {credits}")


@prices_app.command("remove")
def prices_remove(
    model: str, resolution: str = "*", duration: str = "*", action: str = "*", as_json: JsonOption = False
) -> None:
    """Remove a price rule."""
    data = _run(
        lambda rt: admin.remove_price(
            rt, model=model, resolution=resolution, duration=duration, action=action
        )
    )
    _emit(data, as_json, lambda d: "removed")


# ---- ledger and usage --------------------------------------------------------------------------
@ledger_app.command("list")
def ledger_list(
    account: AccountOption = None,
    task: Annotated[str | None, typer.Option("--task", help="Only this task.")] = None,
    kind: Annotated[str | None, typer.Option(help="A ledger kind, e.g. topup or redeem.")] = None,
    since: SinceOption = None,
    until: SinceOption = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
) -> None:
    """Ledger rows, newest first."""
    data = _run(
        lambda rt: admin.ledger_entries(
            rt, account=account, task_id=task, kind=kind, since=_when(since), until=_when(until), limit=limit
        )
    )
    _emit(
        data,
        as_json,
        lambda d: _rows(d, ["id", "created_at", "account", "kind", "amount", "task_id", "note"]),
    )


@ledger_app.command("verify")
def ledger_verify(as_json: JsonOption = False) -> None:
    """Prove that every account's ledger sums to its balance (exit 1 if not)."""
    data = _run(admin.verify_ledger)

    def text(d: dict[str, Any]) -> str:
        if d["balanced"]:
            return f"ok: {d['accounts_checked']} accounts, every ledger sums to its balance"
        return "MISMATCH:\n" + _rows(d["mismatches"], ["account", "balance", "ledger_sum"])

    _emit(data, as_json, text)
    if not data["balanced"]:
        raise typer.Exit(code=1)


def usage(
    account: AccountOption = None,
    since: SinceOption = None,
    until: SinceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Tasks and credits per account and model."""
    data = _run(lambda rt: admin.usage(rt, account=account, since=_when(since), until=_when(until)))

    def text(d: list[dict[str, Any]]) -> str:
        flat = [{**r, **r["tasks"]} for r in d]
        columns = ["account", "model", "completed", "failed", "pending", "processing", "credits_charged"]
        return _rows(flat, [*columns, "credits_held"])

    _emit(data, as_json, text)


# ---- deliveries --------------------------------------------------------------------------------
@deliveries_app.command("list")
def deliveries_list(
    account: AccountOption = None,
    task: Annotated[str | None, typer.Option("--task", help="Only this task.")] = None,
    status: Annotated[str | None, typer.Option(help="pending, delivered or dead.")] = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
) -> None:
    """Callback events with their attempts."""
    data = _run(
        lambda rt: admin.deliveries(
            rt, task_id=task, account=account, status=status, limit=limit, with_attempts=as_json
        )
    )
    columns = ["id", "task_id", "sequence", "state", "status", "attempts", "last_status", "last_error"]
    _emit(data, as_json, lambda d: _rows(d, columns))


@deliveries_app.command("replay")
def deliveries_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Event ids.")] = None,
    account: AccountOption = None,
    task: Annotated[str | None, typer.Option("--task", help="Every event of this task.")] = None,
    status: Annotated[str | None, typer.Option(help="Every event in this status, e.g. dead.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Send events again, with their original webhook-id."""
    data = _run(lambda rt: admin.replay(rt, event_ids=ids, task_id=task, account=account, status=status))
    _emit(data, as_json, lambda d: f"{d['replayed']} events queued again")


# ---- channels and tasks ------------------------------------------------------------------------
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


@channels_app.command("add")
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
    data = _run(
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
    _emit(data, as_json, lambda d: f"added channel {d['name']} ({d['kind']})")


@channels_app.command("list")
def channels_list(as_json: JsonOption = False) -> None:
    """Channels with their health (secrets masked)."""
    data = _run(channel_admin.list_channels)
    _emit(data, as_json, lambda d: _rows(d, CHANNEL_COLUMNS))


@channels_app.command("test")
def channels_test(name: str, as_json: JsonOption = False) -> None:
    """Send one authenticated request to the channel (exit 1 if it fails)."""
    result: channel_admin.ProbeResult = _run(lambda rt: channel_admin.test_channel(rt, name))
    _emit(
        asdict(result),
        as_json,
        lambda _: (
            f"{result.channel}: {'ok' if result.ok else 'FAILED'} in {result.latency_ms} ms"
            + (f" ({result.error})" if result.error else "")
        ),
    )
    if not result.ok:
        raise typer.Exit(code=1)


@channels_app.command("enable")
def channels_enable(name: str, as_json: JsonOption = False) -> None:
    """Enable a channel (also lifts a bench)."""
    data = _run(lambda rt: channel_admin.update_channel(rt, name, {"enabled": True}))
    _emit(data, as_json, lambda d: f"{d['name']} enabled")


@channels_app.command("disable")
def channels_disable(name: str, as_json: JsonOption = False) -> None:
    """Stop routing new tasks to a channel (tasks already there are still followed)."""
    data = _run(lambda rt: channel_admin.update_channel(rt, name, {"enabled": False}))
    _emit(data, as_json, lambda d: f"{d['name']} disabled")


@tasks_app.command("show")
def tasks_show(task_id: str, as_json: JsonOption = False) -> None:
    """A task: request, upstream id, channel, polls, ledger rows and deliveries."""
    data = _run(lambda rt: channel_admin.show_task(rt, task_id))

    def text(d: dict[str, Any]) -> str:
        lines = [f"{k}: {d[k]}" for k in d if k not in ("ledger", "deliveries", "request", "object")]
        lines.append(f"request: {json.dumps(d['request'], ensure_ascii=False)}")
        lines.append("ledger:\n" + _rows(d["ledger"], ["created_at", "kind", "amount"]))
        lines.append("deliveries:\n" + _rows(d["deliveries"], ["sequence", "state", "status", "attempts"]))
        return "\n".join(lines)

    _emit(data, as_json, text)


@tasks_app.command("repoll")
def tasks_repoll(task_id: str, as_json: JsonOption = False) -> None:
    """Ask upstream about an unfinished task now."""
    data = _run(lambda rt: channel_admin.repoll(rt, task_id))
    _emit(data, as_json, lambda d: f"task {d['id']} will be polled now")


@tasks_app.command("refund")
def tasks_refund(task_id: str, as_json: JsonOption = False) -> None:
    """End an unfinished task as failed; its held credits go back to the account."""
    data = _run(lambda rt: channel_admin.refund(rt, task_id))
    _emit(data, as_json, lambda d: f"task {d['id']} failed; {d['refunded']} credits released")


def register(app: typer.Typer) -> None:
    app.add_typer(channels_app, name="channels")
    app.add_typer(tasks_app, name="tasks")
    app.add_typer(accounts_app, name="accounts")
    app.add_typer(keys_app, name="keys")
    app.add_typer(prices_app, name="prices")
    app.add_typer(ledger_app, name="ledger")
    app.add_typer(deliveries_app, name="deliveries")
    app.add_typer(codes_app, name="codes")
    app.command("usage")(usage)
