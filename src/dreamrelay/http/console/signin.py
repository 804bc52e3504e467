"""Signing in and out of the console, and choosing its language."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from dreamrelay.domain.errors import Forbidden, InvalidApiKey
from dreamrelay.http.console.context import HOME, Ctx, Stop
from dreamrelay.http.console.deps import Visitor
from dreamrelay.http.console.pages import redirect, render
from dreamrelay.http.console.session import COOKIE_PATH, LANG_COOKIE, Session
from dreamrelay.http.console.visitors import checked_form, safe_next, sign_out
from dreamrelay.services.auth import authenticate, sign_in_attempt

router = APIRouter(prefix=COOKIE_PATH)


@router.get("")
async def root(ctx: Visitor) -> Response:
    return redirect(ctx, HOME.get(ctx.role, f"{COOKIE_PATH}/login"))


@router.get("/login")
async def login_page(ctx: Visitor) -> Response:
    if ctx.role in HOME:
        return redirect(ctx, safe_next(ctx.request.query_params.get("next"), HOME[ctx.role]))
    ctx.ensure_session()
    reason = ctx.request.query_params.get("reason")
    error = "login.signed_out" if reason == "signed_out" else None
    return _login(ctx, error=error)


def _login(ctx: Ctx, *, error: str | None = None, status: int = 200) -> Response:
    target = safe_next(ctx.request.query_params.get("next"), "")
    return render(ctx, "login.html", status=status, error=error, next=target)


@router.post("/login")
async def login(ctx: Visitor) -> Response:
    form = await _form_or_fresh_login(ctx)
    secret = form.get("secret")
    target = form.get("next")
    client = ctx.request.client.host if ctx.request.client else "?"
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
async def logout(ctx: Visitor) -> Response:
    await checked_form(ctx)
    await sign_out(ctx)
    return redirect(ctx, f"{COOKIE_PATH}/login")


@router.post("/lang")
async def choose_language(ctx: Visitor) -> Response:
    form = await checked_form(ctx)
    lang = form.get("lang")
    if lang in ("en", "zh"):
        ctx.extra_cookies[LANG_COOKIE] = lang
    return redirect(ctx, safe_next(form.get("next"), HOME.get(ctx.role, f"{COOKIE_PATH}/login")))
