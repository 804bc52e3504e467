"""The web console under /console: sign-in, the operator's pages, the customer's pages, a small JSON API."""

from __future__ import annotations

import hmac
import math
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from dreamrelay.domain.catalog import (
    ASPECT_RATIOS,
    DM_ACTIONS,
    DURATIONS,
    MODELS,
    PHOTON_MODELS,
    RAY32_RESOLUTIONS,
    RESOLUTIONS,
    SOURCE_DURATION_BUCKETS,
    UNI_MODELS,
)
from dreamrelay.domain.errors import (
    DreamRelayError,
    Forbidden,
    InvalidApiKey,
    InvalidRequest,
    NotFound,
    RateLimited,
    TaskNotFound,
)
from dreamrelay.http import errors
from dreamrelay.http.console import customer_keys, operator_codes, queries, snippets
from dreamrelay.http.console.session import COOKIE_PATH, LANG_COOKIE, Session
from dreamrelay.http.console.task_view import operator_view, task_view
from dreamrelay.http.console.web import (
    ASSETS,
    LARGEST_NUMBER,
    Ctx,
    FormError,
    Stop,
    check_csrf_header,
    checked_form,
    context,
    error_page,
    json_response,
    page,
    redirect,
    render,
    safe_next,
    sign_out,
)
from dreamrelay.http.deps import describe, parse_body, read_json
from dreamrelay.http.schemas.agents import GenerationCreate as AgentsCreate
from dreamrelay.http.schemas.own import OwnSubmit
from dreamrelay.ratelimit import NO_LIMIT, effective_limit
from dreamrelay.services import admin, agents, channel_admin, reads, submit
from dreamrelay.services.auth import authenticate, sign_in_attempt
from dreamrelay.store import pricing
from dreamrelay.store import tasks as task_store

router = APIRouter(prefix=COOKIE_PATH, include_in_schema=False)

HOME = {"admin": f"{COOKIE_PATH}/admin", "customer": f"{COOKIE_PATH}/me"}
GRID_PAGE = 100
EXPLORER_PAGE = 50
STATES = queries.STATES


# ---- static files -------------------------------------------------------------------------------
@router.get("/static/{name}")
async def static(name: str, request: Request) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        return Response(status_code=404)
    etag = f'"{asset.version}"'
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable",
        "ETag": etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


# ---- signing in and out, language ------------------------------------------------------------------
@router.get("")
@page
async def root(request: Request) -> Response:
    ctx = await context(request)
    return redirect(ctx, HOME.get(ctx.role, f"{COOKIE_PATH}/login"))


@router.get("/login")
@page
async def login_page(request: Request) -> Response:
    ctx = await context(request)
    if ctx.role in HOME:
        return redirect(ctx, safe_next(request.query_params.get("next"), HOME[ctx.role]))
    ctx.ensure_session()
    reason = request.query_params.get("reason")
    error = "login.signed_out" if reason == "signed_out" else None
    return _login(ctx, error=error)


def _login(ctx: Ctx, *, error: str | None = None, status: int = 200) -> Response:
    target = safe_next(ctx.request.query_params.get("next"), "")
    return render(ctx, "login.html", status=status, error=error, next=target)


@router.post("/login")
@page
async def login(request: Request) -> Response:
    ctx = await context(request)
    form = await _form_or_fresh_login(ctx)
    secret = form.get("secret")
    target = form.get("next")
    client = request.client.host if request.client else "?"
    decision = await sign_in_attempt(ctx.rt, client)
    if not decision.allowed:
        return _login(ctx, error="login.too_many", status=429)
    if not secret:
        return _login(ctx, error="login.empty", status=400)
    if hmac.compare_digest(secret.encode(), ctx.rt.admin_token.encode()):
        ctx.new_session = Session.operator(ctx.rt.admin_token)
        return redirect(ctx, _home_or_next(target, "admin"))
    try:
        caller = await authenticate(ctx.rt, f"Bearer {secret}")
    except InvalidApiKey:
        return _login(ctx, error="login.wrong", status=401)
    except Forbidden:
        return _login(ctx, error="login.key_unusable", status=403)
    # A fresh session id on every sign-in: a session fixed before it is worth nothing after.
    ctx.new_session = Session.customer(caller.account_id, caller.key_id)
    return redirect(ctx, _home_or_next(target, "customer"))


def _home_or_next(target: str, role: str) -> str:
    """Back to the page that asked for a sign-in, if it is one of this role's pages."""
    home = HOME[role]
    return safe_next(target, home) if target == home or target.startswith((home + "/", home + "?")) else home


async def _form_or_fresh_login(ctx: Ctx) -> Any:
    try:
        return await checked_form(ctx)
    except Stop:
        # No (or an expired) sign-in session: a new form, never a sign-in on an unchecked POST.
        ctx.session = None
        ctx.ensure_session()
        raise Stop(_login(ctx, error="login.expired", status=403)) from None


@router.post("/logout")
@page
async def logout(request: Request) -> Response:
    ctx = await context(request)
    await checked_form(ctx)
    await sign_out(ctx)
    return redirect(ctx, f"{COOKIE_PATH}/login")


@router.post("/lang")
@page
async def choose_language(request: Request) -> Response:
    ctx = await context(request)
    form = await checked_form(ctx)
    lang = form.get("lang")
    if lang in ("en", "zh"):
        ctx.extra_cookies[LANG_COOKIE] = lang
    return redirect(ctx, safe_next(form.get("next"), HOME.get(ctx.role, f"{COOKIE_PATH}/login")))


# ---- the operator: dashboard ------------------------------------------------------------------------
CHART_HEIGHT = 120.0
BAR_STEP = 12


def _chart(hours: list[dict[str, Any]]) -> dict[str, Any]:
    peak = max((sum(h["counts"].values()) for h in hours), default=0) or 1
    bars = []
    for i, hour in enumerate(hours):
        y = CHART_HEIGHT
        segments = []
        for state in ("completed", "failed", "processing", "pending"):
            n = hour["counts"][state]
            if n:
                height = max(n / peak * CHART_HEIGHT, 1.0)
                y -= height
                segments.append({"state": state, "y": round(y, 2), "h": round(height, 2), "n": n})
        label = datetime.fromtimestamp(hour["start"], UTC).strftime("%H:00")
        bars.append(
            {
                "x": i * BAR_STEP + 1,
                "segments": segments,
                "total": sum(hour["counts"].values()),
                "counts": hour["counts"],
                "label": label,
                "show_label": i % 6 == 0,
            }
        )
    return {"bars": bars, "peak": peak, "width": len(hours) * BAR_STEP, "height": CHART_HEIGHT}


@router.get("/admin")
@page
async def dashboard(request: Request) -> Response:
    ctx = await context(request, "admin")
    async with ctx.rt.db.reader() as conn:
        board = await queries.dashboard(
            conn, now=time.time(), deadline_seconds=ctx.rt.settings.task_deadline_seconds
        )
    channels = await channel_admin.list_channels(ctx.rt)
    return render(ctx, "admin_dashboard.html", board=board, chart=_chart(board.hours), channels=channels)


# ---- the operator: accounts and keys --------------------------------------------------------------
@router.get("/admin/accounts")
@page
async def accounts_page(request: Request) -> Response:
    ctx = await context(request, "admin")
    rows = await admin.list_accounts(ctx.rt, limit=1000)
    return render(ctx, "admin_accounts.html", accounts=rows)


@router.post("/admin/accounts")
@page
async def create_account(request: Request) -> Response:
    ctx = await context(request, "admin")
    form = await checked_form(ctx)
    name = form.get("name")
    try:
        balance = form.optional_int("balance") or 0
        await admin.create_account(ctx.rt, name, balance)
    except FormError:
        return redirect(ctx, f"{COOKIE_PATH}/admin/accounts", error="error.number")
    except DreamRelayError as exc:
        return redirect(ctx, f"{COOKIE_PATH}/admin/accounts", error=exc)
    return redirect(ctx, _account_url(name), flash="flash.account_created")


BLANK_KEY = dict.fromkeys(
    ("name", "rpm", "max_in_flight", "batch_rpm", "batch_envelope", "spend_cap", "allowed_models")
)


def _account_url(name: str) -> str:
    return f"{COOKIE_PATH}/admin/accounts/{name}"


async def _account_page(ctx: Ctx, name: str, *, new_key: dict[str, Any] | None = None) -> Response:
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
        models=list(MODELS),
        blank_key=BLANK_KEY,
    )


@router.get("/admin/accounts/{name}")
@page
async def account_page(request: Request, name: str) -> Response:
    ctx = await context(request, "admin")
    return await _account_page(ctx, name)


@router.post("/admin/accounts/{name}/balance")
@page
async def change_balance(request: Request, name: str) -> Response:
    ctx = await context(request, "admin")
    form = await checked_form(ctx)
    try:
        amount = form.optional_int("amount")
        if amount is None:
            raise FormError("amount")
        if form.get("op") != "adjust" and amount <= 0:
            raise InvalidRequest("a top-up must be positive; use an adjustment to remove credits")
        await admin.change_balance(ctx.rt, name, amount, form.get("note"))
    except FormError:
        return redirect(ctx, _account_url(name), error="error.number")
    except DreamRelayError as exc:
        return redirect(ctx, _account_url(name), error=exc)
    return redirect(ctx, _account_url(name), flash="flash.balance_changed")


def _key_settings(form: Any) -> dict[str, Any]:
    models = [m for m in form.getlist("allowed_models") if m]
    return {
        "name": form.get("name"),
        "rpm": form.optional_int("rpm"),
        "max_in_flight": form.optional_int("max_in_flight"),
        "batch_rpm": form.optional_int("batch_rpm"),
        "batch_envelope": form.get("batch_envelope") or "bare",
        "spend_cap": form.optional_int("spend_cap"),
        "allowed_models": models or None,
    }


@router.post("/admin/accounts/{name}/keys")
@page
async def create_key(request: Request, name: str) -> Response:
    ctx = await context(request, "admin")
    form = await checked_form(ctx)
    try:
        settings = _key_settings(form)
        key_name = settings.pop("name")
        created = await admin.create_key(ctx.rt, name, key_name, **settings)
    except FormError:
        return redirect(ctx, _account_url(name), error="error.number")
    except DreamRelayError as exc:
        return redirect(ctx, _account_url(name), error=exc)
    # The key itself is in this one answer only (never stored, never in a URL or a cookie).
    return await _account_page(ctx, name, new_key=created)


@router.post("/admin/keys/{key_id}")
@page
async def update_key(request: Request, key_id: str) -> Response:
    ctx = await context(request, "admin")
    form = await checked_form(ctx)
    if not key_id.isdigit() or int(key_id) > LARGEST_NUMBER:
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
            settings = _key_settings(form)
        described = await admin.update_key(ctx.rt, int(key_id), settings)
    except FormError:
        return redirect(ctx, back, error="error.number")
    except DreamRelayError as exc:
        return redirect(ctx, back, error=exc)
    return redirect(ctx, _account_url(str(described["account"])), flash="flash.key_updated")


# ---- the operator: prices -------------------------------------------------------------------------
@router.get("/admin/prices")
@page
async def prices_page(request: Request) -> Response:
    ctx = await context(request, "admin")
    rows = await admin.list_prices(ctx.rt)
    return render(
        ctx,
        "admin_prices.html",
        prices=rows,
        models=[*MODELS, *PHOTON_MODELS, pricing.WILDCARD],
        resolutions=[pricing.WILDCARD, *dict.fromkeys((*RAY32_RESOLUTIONS, *RESOLUTIONS))],
        durations=[pricing.WILDCARD, *dict.fromkeys((*DURATIONS, *(b for b, _ in SOURCE_DURATION_BUCKETS)))],
        actions=list(admin.PRICE_ACTIONS),
    )


@router.post("/admin/prices")
@page
async def set_price(request: Request) -> Response:
    ctx = await context(request, "admin")
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
        await admin.set_price(ctx.rt, credits=credits, **fields)
    except FormError:
        return redirect(ctx, back, error="error.number")
    except DreamRelayError as exc:
        return redirect(ctx, back, error=exc)
    return redirect(ctx, back, flash="flash.price_set")


# ---- the operator: channels ------------------------------------------------------------------------
CHANNELS_URL = f"{COOKIE_PATH}/admin/channels"


@router.get("/admin/channels")
@page
async def channels_page(request: Request) -> Response:
    ctx = await context(request, "admin")
    rows = await channel_admin.list_channels(ctx.rt)
    return render(ctx, "admin_channels.html", channels=rows, kinds=channel_admin.KINDS, models=list(MODELS))


@router.post("/admin/channels")
@page
async def add_channel(request: Request) -> Response:
    ctx = await context(request, "admin")
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
    except FormError:
        return redirect(ctx, CHANNELS_URL, error="error.number")
    except DreamRelayError as exc:
        return redirect(ctx, CHANNELS_URL, error=exc)
    return redirect(ctx, CHANNELS_URL, flash="flash.channel_added")


@router.post("/admin/channels/{name}")
@page
async def change_channel(request: Request, name: str) -> Response:
    """Enable, disable or test a channel (the button pressed is the form's `action`)."""
    ctx = await context(request, "admin")
    form = await checked_form(ctx)
    action = form.get("action")
    try:
        if action == "test":
            result = await channel_admin.test_channel(ctx.rt, name)
            detail = f"{result['latency_ms']} ms" + (f" · {result['error']}" if result["error"] else "")
            ctx.set_flash = {
                "kind": "ok" if result["ok"] else "error",
                "key": "flash.channel_ok" if result["ok"] else "flash.channel_failed",
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
def _utc(value: str) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _number(value: str | None) -> float | None:
    """A finite number from a query parameter, or None."""
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _offset(value: str | None) -> int:
    return int(min(max(_number(value) or 0, 0), LARGEST_NUMBER))


@router.get("/admin/tasks")
@page
async def tasks_page(request: Request) -> Response:
    ctx = await context(request, "admin")
    q = request.query_params
    filters = {k: q.get(k, "").strip() for k in ("state", "account", "channel", "since", "until")}
    if filters["state"] not in STATES:
        filters["state"] = ""
    offset = _offset(q.get("offset"))
    channel_names = [c["name"] for c in await channel_admin.list_channels(ctx.rt)]
    unknown = filters["channel"] and filters["channel"] not in channel_names
    rows = []
    if not unknown:
        rows = await channel_admin.list_tasks(
            ctx.rt,
            state=filters["state"] or None,
            account=filters["account"] or None,
            channel=filters["channel"] or None,
            since=_utc(filters["since"]),
            until=_utc(filters["until"]),
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
        rows=[{**r, "took": _took(r)} for r in rows],
        filters=filters,
        states=STATES,
        account_names=[a["name"] for a in await admin.list_accounts(ctx.rt, limit=500)],
        channel_names=channel_names,
        older=older,
        newest=f"{COOKIE_PATH}/admin/tasks?" + urlencode(kept) if offset else None,
    )


def _took(task: dict[str, Any]) -> float | None:
    """Seconds from created to finished, from the ISO times the services return."""
    if not task.get("finished_at"):
        return None
    parse = datetime.fromisoformat
    return (parse(task["finished_at"]) - parse(task["created_at"])).total_seconds()


def _task_url(task_id: str) -> str:
    return f"{COOKIE_PATH}/admin/tasks/{quote(task_id, safe='')}"


@router.get("/admin/tasks/{task_id}")
@page
async def admin_task_page(request: Request, task_id: str) -> Response:
    ctx = await context(request, "admin")
    try:
        info = await channel_admin.show_task(ctx.rt, task_id)
    except NotFound:
        return error_page(ctx, 404, "error.task_not_found")
    return render(
        ctx,
        "admin_task.html",
        task=info,
        view=operator_view(info, ctx.rt.media_base_url),
        took=_took(info),
        request_json=orjson.dumps(info["request"], option=orjson.OPT_INDENT_2).decode(),
    )


@router.post("/admin/tasks/{task_id}")
@page
async def task_action(request: Request, task_id: str) -> Response:
    """Re-poll, refund or replay callbacks (the button pressed is the form's `action`)."""
    ctx = await context(request, "admin")
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
    except FormError:
        return redirect(ctx, back, error="error.number")
    except DreamRelayError as exc:
        return redirect(ctx, back, error=exc)
    if not done["replayed"]:
        return redirect(ctx, back, error="error.nothing_to_replay")
    return redirect(ctx, back, flash="flash.replayed")


# ---- the customer ---------------------------------------------------------------------------------
def _base(ctx: Ctx) -> str:
    return ctx.rt.settings.resolved_public_url


async def _balance(ctx: Ctx) -> int:
    assert ctx.key is not None
    async with ctx.rt.db.reader() as conn:
        return await queries.balance(conn, ctx.key.account_id)


@router.get("/me")
@page
async def videos(request: Request) -> Response:
    ctx = await context(request, "customer")
    assert ctx.key is not None
    before = _number(request.query_params.get("before"))
    async with ctx.rt.db.reader() as conn:
        cards = await queries.account_tasks(
            conn, ctx.key.account_id, ctx.rt.media_base_url, before=before, limit=GRID_PAGE
        )
        balance = await queries.balance(conn, ctx.key.account_id)
    older = None
    if len(cards) == GRID_PAGE:
        older = f"{COOKIE_PATH}/me?" + urlencode({"before": repr(cards[-1].created_at)})
    return render(
        ctx,
        "me_videos.html",
        cards=cards,
        kinds=DM_ACTIONS,
        balance=balance,
        older=older,
        paged=before is not None,
    )


@router.get("/me/playground")
@page
async def playground(request: Request) -> Response:
    ctx = await context(request, "customer")
    example = snippets.snippet(_base(ctx), "submit", "POST", "/luma/generations", snippets.submit_body())
    return render(
        ctx,
        "me_playground.html",
        balance=await _balance(ctx),
        # Videos (Ray 2, Ray 3.2) and Uni-1 images (made through the Agents API).
        models=[*MODELS, *UNI_MODELS],
        default_model=ctx.rt.settings.default_model,
        ratios=ASPECT_RATIOS,
        resolutions=list(dict.fromkeys((*RAY32_RESOLUTIONS, *RESOLUTIONS))),
        durations=DURATIONS,
        example=example,
        base=_base(ctx),
    )


@router.post("/me/playground")
@page
async def playground_submit(request: Request) -> Response:
    """Without JavaScript the playground form lands here; with it, the page calls /me/api/generations."""
    ctx = await context(request, "customer")
    form = await checked_form(ctx)
    back = f"{COOKIE_PATH}/me/playground"
    fields = {
        "user_prompt": form.get("user_prompt"),
        "aspect_ratio": form.get("aspect_ratio") or None,
        "model_name": form.get("model_name") or None,
        "resolution": form.get("resolution") or None,
        "duration": form.get("duration") or None,
        "loop": form.get("loop") == "on",
    }
    try:
        if fields["model_name"] in UNI_MODELS:
            await _spend(ctx)
            task = await _uni_image(ctx, fields)
            return redirect(ctx, f"{COOKIE_PATH}/me/tasks/{task.id}", flash="flash.submitted")
        checked = OwnSubmit.model_validate({k: v for k, v in fields.items() if v is not None})
        await _spend(ctx)
        task = await submit.submit(ctx.rt, ctx.caller, checked.to_input())
    except ValidationError as exc:
        return redirect(ctx, back, error=InvalidRequest(describe(exc)))
    except DreamRelayError as exc:
        return redirect(ctx, back, error=exc)
    return redirect(ctx, f"{COOKIE_PATH}/me/tasks/{task.id}", flash="flash.submitted")


@router.get("/me/tasks/{task_id}")
@page
async def my_task(request: Request, task_id: str) -> Response:
    ctx = await context(request, "customer")
    assert ctx.key is not None
    async with ctx.rt.db.reader() as conn:
        # Only the signed-in account's task: any other id is the same 404 as an unknown one.
        task = await task_store.get_task(conn, task_id, ctx.key.account_id) if len(task_id) <= 64 else None
        balance = await queries.balance(conn, ctx.key.account_id)
    if task is None:
        return error_page(ctx, 404, "error.task_not_found")
    account = ctx.key.account
    ledger = await admin.ledger_entries(ctx.rt, account=account, task_id=task_id)
    deliveries = await admin.deliveries(ctx.rt, account=account, task_id=task_id, with_attempts=True)
    return render(
        ctx,
        "me_task.html",
        balance=balance,
        task=task,
        view=task_view(task, ctx.rt.media_base_url, customer=True),
        obj=orjson.loads(task.body),
        kinds=DM_ACTIONS,
        ledger=ledger,
        deliveries=deliveries,
        call_list=snippets.for_task(_base(ctx), task_id),
    )


@router.get("/me/billing")
@page
async def billing(request: Request) -> Response:
    ctx = await context(request, "customer")
    assert ctx.key is not None
    offset = _offset(request.query_params.get("offset"))
    rows = await admin.ledger_entries(ctx.rt, account=ctx.key.account, limit=100, offset=offset)
    found = await admin.show_account(ctx.rt, ctx.key.account)
    return render(
        ctx,
        "me_billing.html",
        balance=found["balance"],
        found=found,
        ledger=rows,
        offset=offset,
        older=f"{COOKIE_PATH}/me/billing?offset={offset + 100}" if len(rows) == 100 else None,
        call_list=[c for c in snippets.every_call(_base(ctx)) if c.id in ("account", "ledger")],
    )


@router.get("/me/callbacks")
@page
async def callbacks(request: Request) -> Response:
    ctx = await context(request, "customer")
    assert ctx.key is not None
    secret = await admin.callback_secret(ctx.rt, ctx.key.account)
    rows = await admin.deliveries(ctx.rt, account=ctx.key.account, limit=50, with_attempts=True)
    return render(
        ctx,
        "me_callbacks.html",
        balance=await _balance(ctx),
        secret=secret,
        deliveries=rows,
        call_list=[c for c in snippets.every_call(_base(ctx)) if c.id in ("secret", "rotate", "deliveries")],
    )


@router.post("/me/callbacks/rotate")
@page
async def rotate_secret(request: Request) -> Response:
    ctx = await context(request, "customer")
    await checked_form(ctx)
    assert ctx.key is not None
    await admin.callback_secret(ctx.rt, ctx.key.account, rotate=True)
    return redirect(ctx, f"{COOKIE_PATH}/me/callbacks", flash="flash.secret_rotated")


@router.get("/me/api")
@page
async def api_page(request: Request) -> Response:
    ctx = await context(request, "customer")
    return render(
        ctx,
        "me_api.html",
        balance=await _balance(ctx),
        call_list=snippets.every_call(_base(ctx)),
        base=_base(ctx),
    )


# ---- the customer's JSON API (the playground's script), on the session cookie + CSRF header ---------
async def _json_caller(request: Request, *, post: bool) -> Ctx:
    ctx = await context(request)
    if ctx.role != "customer":
        not_signed_in = InvalidApiKey("sign in to the console first", code="not_signed_in")
        raise Stop(errors.render(request, not_signed_in))
    if post and not check_csrf_header(ctx):
        raise Stop(errors.render(request, Forbidden("missing or wrong X-CSRF-Token", code="csrf_failed")))
    await _spend(ctx)
    return ctx


async def _spend(ctx: Ctx) -> None:
    """Console calls draw from the key's requests-per-minute bucket like API calls do."""
    caller = ctx.caller
    limit = effective_limit(caller.rpm, ctx.rt.settings.rate_limit_rpm)
    if limit == NO_LIMIT:
        return
    decision = await ctx.rt.limiter.hit(f"rpm:{caller.key_id}", limit)
    if not decision.allowed:
        raise RateLimited("rate limit reached for this API key; slow down", headers=decision.headers())


@router.post("/me/api/generations")
@page
async def api_submit(request: Request) -> Response:
    ctx = await _json_caller(request, post=True)
    given = await read_json(request)
    if isinstance(given, dict) and given.get("model_name") in UNI_MODELS:
        return json_response(ctx, (await _uni_image(ctx, given)).body)
    body = await parse_body(request, OwnSubmit)
    task = await submit.submit(ctx.rt, ctx.caller, body.to_input())
    return json_response(ctx, task.body)


async def _uni_image(ctx: Ctx, given: dict[str, Any]) -> Any:
    """A playground prompt for Uni-1: an Agents API image generation of the signed-in key."""
    ratio = given.get("aspect_ratio")
    fields = {"prompt": given.get("user_prompt"), "type": "image", "model": given.get("model_name")}
    try:
        body = AgentsCreate.model_validate({**fields, **({"aspect_ratio": ratio} if ratio else {})})
    except ValidationError as exc:
        raise InvalidRequest(describe(exc)) from exc
    return await agents.create(ctx.rt, ctx.caller, body, None)


@router.get("/me/api/generations/{task_id}")
@page
async def api_task(request: Request, task_id: str) -> Response:
    ctx = await _json_caller(request, post=False)
    try:
        return json_response(ctx, await reads.get_body(ctx.rt, ctx.caller, task_id))
    except TaskNotFound:  # a Uni-1 image of the playground is an Agents API generation
        return json_response(ctx, (await reads.get_agents_task(ctx.rt, ctx.caller, task_id)).body)


@router.get("/me/api/balance")
@page
async def api_balance(request: Request) -> Response:
    """The header's balance, refreshed by the playground when a task ends."""
    ctx = await _json_caller(request, post=False)
    return json_response(ctx, orjson.dumps({"balance": await _balance(ctx)}))


# Self-service (issue 16): the customer's keys and code redemption, the operator's credit codes.
router.include_router(customer_keys.router)
router.include_router(operator_codes.router)
