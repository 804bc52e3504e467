"""The operator's pages: dashboard, accounts and keys, prices, channels, tasks."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from dreamrelay.domain.catalog import (
    DURATIONS,
    KEY_MODELS,
    MODELS,
    PRICED_MODELS,
    PRICED_RESOLUTIONS,
    SOURCE_DURATION_BUCKETS,
)
from dreamrelay.domain.errors import DreamRelayError, InvalidRequest, NotFound
from dreamrelay.domain.ids import ascii_int
from dreamrelay.domain.pricing import PER_TASK, UNITS
from dreamrelay.http.console import forms
from dreamrelay.http.console.charts import hourly_bars
from dreamrelay.http.console.context import Ctx
from dreamrelay.http.console.deps import Operator
from dreamrelay.http.console.forms import LARGEST_NUMBER, FormError
from dreamrelay.http.console.pages import error_page, redirect, render
from dreamrelay.http.console.session import COOKIE_PATH
from dreamrelay.http.console.task_view import operator_view
from dreamrelay.http.console.visitors import checked_form
from dreamrelay.services import admin, channel_admin, views
from dreamrelay.services.admin_views import NewOperatorKey
from dreamrelay.store import pricing

router = APIRouter(prefix=f"{COOKIE_PATH}/admin")

EXPLORER_PAGE = 50
STATES = views.STATES


@router.get("")
async def dashboard(ctx: Operator) -> Response:
    board = await views.dashboard(
        ctx.rt.db, now=time.time(), deadline_seconds=ctx.rt.settings.task_deadline_seconds
    )
    channels = await channel_admin.list_channels(ctx.rt)
    return render(ctx, "admin_dashboard.html", board=board, chart=hourly_bars(board.hours), channels=channels)


# ---- the operator: accounts and keys --------------------------------------------------------------
@router.get("/accounts")
async def accounts_page(ctx: Operator) -> Response:
    rows = await admin.list_accounts(ctx.rt, limit=1000)
    return render(ctx, "admin_accounts.html", accounts=rows)


@router.post("/accounts")
async def create_account(ctx: Operator) -> Response:
    form = await checked_form(ctx)
    name = form.get("name")
    try:
        balance = form.optional_int("balance") or 0
        await admin.create_account(ctx.rt, name, balance)
    except (FormError, DreamRelayError) as exc:
        return redirect(ctx, f"{COOKIE_PATH}/admin/accounts", error=exc)
    return redirect(ctx, _account_url(name), flash="flash.account_created")


BLANK_KEY = dict.fromkeys(
    ("name", "rpm", "max_in_flight", "batch_rpm", "batch_envelope", "spend_cap", "allowed_models")
)


def _account_url(name: str) -> str:
    return f"{COOKIE_PATH}/admin/accounts/{name}"


async def _account_page(ctx: Ctx, name: str, *, new_key: NewOperatorKey | None = None) -> Response:
    try:
        found = await admin.show_account(ctx.rt, name)
    except NotFound:
        return error_page(ctx, 404, "error.not_found")
    ledger = await admin.ledger_entries(ctx.rt, account=name, limit=20)
    return render(
        ctx,
        "admin_account.html",
        found=found,
        ledger=ledger,
        new_key=new_key,
        models=list(KEY_MODELS),
        blank_key=BLANK_KEY,
    )


@router.get("/accounts/{name}")
async def account_page(ctx: Operator, name: str) -> Response:
    return await _account_page(ctx, name)


@router.post("/accounts/{name}/balance")
async def change_balance(ctx: Operator, name: str) -> Response:
    form = await checked_form(ctx)
    try:
        amount = form.optional_int("amount")
        if amount is None:
            raise FormError("amount")
        if form.get("op") != "adjust" and amount <= 0:
            raise InvalidRequest("a top-up must be positive; use an adjustment to remove credits")
        await admin.change_balance(ctx.rt, name, amount, form.get("note"))
    except (FormError, DreamRelayError) as exc:
        return redirect(ctx, _account_url(name), error=exc)
    return redirect(ctx, _account_url(name), flash="flash.balance_changed")


@router.post("/accounts/{name}/keys")
async def create_key(ctx: Operator, name: str) -> Response:
    form = await checked_form(ctx)
    try:
        settings = forms.key_settings(form)
        key_name = settings.pop("name")
        created = await admin.create_key(ctx.rt, name, key_name, **settings)
    except (FormError, DreamRelayError) as exc:
        return redirect(ctx, _account_url(name), error=exc)
    # The key itself is in this one answer only (never stored, never in a URL or a cookie).
    return await _account_page(ctx, name, new_key=created)


@router.post("/keys/{key_id}")
async def update_key(ctx: Operator, key_id: str) -> Response:
    form = await checked_form(ctx)
    number = ascii_int(key_id)
    if number is None or number > LARGEST_NUMBER:
        return error_page(ctx, 404, "error.not_found")
    account = form.get("account")
    back = _account_url(account) if account else f"{COOKIE_PATH}/admin/accounts"
    action = form.get("action")
    try:
        if action == "disable":
            settings: dict[str, Any] = {"disabled": True}
        elif action == "enable":
            settings = {"disabled": False}
        else:
            settings = forms.key_settings(form)
        described = await admin.update_key(ctx.rt, number, settings)
    except (FormError, DreamRelayError) as exc:
        return redirect(ctx, back, error=exc)
    return redirect(ctx, _account_url(described.account), flash="flash.key_updated")


# ---- the operator: prices -------------------------------------------------------------------------
@router.get("/prices")
async def prices_page(ctx: Operator) -> Response:
    rows = await admin.list_prices(ctx.rt)
    return render(
        ctx,
        "admin_prices.html",
        prices=rows,
        models=[*PRICED_MODELS, pricing.WILDCARD],
        # Luma's and Seedance's resolutions, and Kling video's modes (its rules are per mode).
        resolutions=[pricing.WILDCARD, *PRICED_RESOLUTIONS],
        durations=[pricing.WILDCARD, *dict.fromkeys((*DURATIONS, *(b for b, _ in SOURCE_DURATION_BUCKETS)))],
        actions=list(admin.PRICE_ACTIONS),
        units=list(UNITS),
    )


@router.post("/prices")
async def set_price(ctx: Operator) -> Response:
    form = await checked_form(ctx)
    back = f"{COOKIE_PATH}/admin/prices"
    fields = {k: form.get(k, "*") or "*" for k in ("model", "resolution", "duration", "action")}
    try:
        if form.get("op") == "remove":
            await admin.remove_price(ctx.rt, **fields)
            return redirect(ctx, back, flash="flash.price_removed")
        credits = form.optional_int("credits")
        if credits is None:
            raise FormError("credits")
        await admin.set_price(ctx.rt, credits=credits, unit=form.get("unit") or PER_TASK, **fields)
    except (FormError, DreamRelayError) as exc:
        return redirect(ctx, back, error=exc)
    return redirect(ctx, back, flash="flash.price_set")


# ---- the operator: channels ------------------------------------------------------------------------
CHANNELS_URL = f"{COOKIE_PATH}/admin/channels"


@router.get("/channels")
async def channels_page(ctx: Operator) -> Response:
    rows = await channel_admin.list_channels(ctx.rt)
    return render(ctx, "admin_channels.html", channels=rows, kinds=channel_admin.KINDS, models=list(MODELS))


@router.post("/channels")
async def add_channel(ctx: Operator) -> Response:
    form = await checked_form(ctx)
    try:
        values = {
            "name": form.get("name"),
            "kind": form.get("kind"),
            "base_url": form.get("base_url"),
            "secret_key": form.get("secret_key"),
            "models": [m for m in form.getlist("models") if m] or None,
            "priority": form.optional_int("priority") or 0,
            "weight": form.optional_int("weight") or 1,
            "concurrency": form.optional_int("concurrency") or 16,
        }
        if not values["name"]:
            raise InvalidRequest("a channel needs a name")
        await channel_admin.add_channel(ctx.rt, **values)
    except (FormError, DreamRelayError) as exc:
        return redirect(ctx, CHANNELS_URL, error=exc)
    return redirect(ctx, CHANNELS_URL, flash="flash.channel_added")


@router.post("/channels/{name}")
async def change_channel(ctx: Operator, name: str) -> Response:
    """Enable, disable or test a channel (the button pressed is the form's `action`)."""
    form = await checked_form(ctx)
    action = form.get("action")
    try:
        if action == "test":
            result = await channel_admin.test_channel(ctx.rt, name)
            detail = f"{result.latency_ms} ms" + (f" · {result.error}" if result.error else "")
            ctx.set_flash = {
                "kind": "ok" if result.ok else "error",
                "key": "flash.channel_ok" if result.ok else "flash.channel_failed",
                "detail": detail,
            }
            return redirect(ctx, CHANNELS_URL)
        if action not in ("enable", "disable"):
            raise InvalidRequest("action must be test, enable or disable")
        await channel_admin.update_channel(ctx.rt, name, {"enabled": action == "enable"})
    except DreamRelayError as exc:
        return redirect(ctx, CHANNELS_URL, error=exc)
    return redirect(ctx, CHANNELS_URL, flash="flash.channel_saved")


# ---- the operator: tasks ---------------------------------------------------------------------------
@router.get("/tasks")
async def tasks_page(ctx: Operator) -> Response:
    q = ctx.request.query_params
    filters = {k: q.get(k, "").strip() for k in ("state", "account", "channel", "since", "until")}
    if filters["state"] not in STATES:
        filters["state"] = ""
    offset = forms.offset(q.get("offset"))
    channel_names = [c.name for c in await channel_admin.list_channels(ctx.rt)]
    unknown = filters["channel"] and filters["channel"] not in channel_names
    rows = []
    if not unknown:
        rows = await channel_admin.list_tasks(
            ctx.rt,
            state=filters["state"] or None,
            account=filters["account"] or None,
            channel=filters["channel"] or None,
            since=forms.utc(filters["since"]),
            until=forms.utc(filters["until"]),
            limit=EXPLORER_PAGE,
            offset=offset,
        )
    kept = {k: v for k, v in filters.items() if v}
    older = None
    if len(rows) == EXPLORER_PAGE:
        older = f"{COOKIE_PATH}/admin/tasks?" + urlencode({**kept, "offset": offset + EXPLORER_PAGE})
    return render(
        ctx,
        "admin_tasks.html",
        rows=[{**r, "took": forms.took(r)} for r in rows],
        filters=filters,
        states=STATES,
        account_names=[a.name for a in await admin.list_accounts(ctx.rt, limit=500)],
        channel_names=channel_names,
        older=older,
        newest=f"{COOKIE_PATH}/admin/tasks?" + urlencode(kept) if offset else None,
    )


def _task_url(task_id: str) -> str:
    return f"{COOKIE_PATH}/admin/tasks/{quote(task_id, safe='')}"


@router.get("/tasks/{task_id}")
async def admin_task_page(ctx: Operator, task_id: str) -> Response:
    try:
        info = await channel_admin.show_task(ctx.rt, task_id)
    except NotFound:
        return error_page(ctx, 404, "error.task_not_found")
    return render(
        ctx,
        "admin_task.html",
        task=info,
        view=operator_view(info, ctx.rt.media_base_url),
        took=forms.took(info),
        request_json=orjson.dumps(info["request"], option=orjson.OPT_INDENT_2).decode(),
    )


@router.post("/tasks/{task_id}")
async def task_action(ctx: Operator, task_id: str) -> Response:
    """Re-poll, refund or replay callbacks (the button pressed is the form's `action`)."""
    form = await checked_form(ctx)
    back = _task_url(task_id)
    action = form.get("action")
    try:
        if action == "repoll":
            await channel_admin.repoll(ctx.rt, task_id)
            return redirect(ctx, back, flash="flash.repolled")
        if action == "refund":
            await channel_admin.refund(ctx.rt, task_id)
            return redirect(ctx, back, flash="flash.refunded")
        if action != "replay":
            raise InvalidRequest("action must be repoll, refund or replay")
        event = form.optional_int("event")
        if event is not None:
            # Only an event of this task, whatever id was posted.
            known = {e["id"] for e in await admin.deliveries(ctx.rt, task_id=task_id, limit=1000)}
            if event not in known:
                raise NotFound("no such callback event for this task")
            done = await admin.replay(ctx.rt, event_ids=[event])
        else:
            done = await admin.replay(ctx.rt, task_id=task_id)
    except (FormError, DreamRelayError) as exc:
        return redirect(ctx, back, error=exc)
    if not done.replayed:
        return redirect(ctx, back, error="error.nothing_to_replay")
    return redirect(ctx, back, flash="flash.replayed")
