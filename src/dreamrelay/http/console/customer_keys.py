"""The customer's own keys and credit-code redemption in the console (thin pages over the services
the /account API uses: services/account_keys.py and services/credit_codes.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from dreamrelay.domain.catalog import KEY_MODELS
from dreamrelay.domain.errors import DreamRelayError
from dreamrelay.domain.ids import ascii_int
from dreamrelay.http.console.context import Ctx
from dreamrelay.http.console.deps import Customer
from dreamrelay.http.console.forms import Form, FormError
from dreamrelay.http.console.pages import error_page, redirect, render
from dreamrelay.http.console.session import COOKIE_PATH
from dreamrelay.http.console.visitors import checked_form
from dreamrelay.services import account_keys, credit_codes, views
from dreamrelay.services.admin_views import CustomerKey

router = APIRouter(prefix=f"{COOKIE_PATH}/me")

KEYS_URL = f"{COOKIE_PATH}/me/keys"
BLANK_KEY = dict.fromkeys(("name", "rpm", "max_in_flight", "batch_rpm", "spend_cap", "allowed_models"))


def _key_settings(form: Form) -> dict[str, Any]:
    """The limits the form gives; empty fields are left out (the service inherits them)."""
    models = [m for m in form.getlist("allowed_models") if m]
    values: dict[str, Any] = {"name": form.get("name") or None, "allowed_models": models or None}
    for name in ("rpm", "max_in_flight", "batch_rpm", "spend_cap"):
        values[name] = form.optional_int(name)
    return {k: v for k, v in values.items() if v is not None}


async def _keys_page(ctx: Ctx, *, new_key: CustomerKey | None = None) -> Response:
    account = ctx.signed_in.account_id
    balance = await views.balance(ctx.rt.db, account)
    return render(
        ctx,
        "me_keys.html",
        keys=await account_keys.list_keys(ctx.rt, ctx.caller),
        cap=await account_keys.key_cap(ctx.rt, account),
        new_key=new_key,
        models=list(KEY_MODELS),
        blank_key=BLANK_KEY,
        balance=balance,
    )


@router.get("/keys")
async def keys_page(ctx: Customer) -> Response:
    return await _keys_page(ctx)


@router.post("/keys")
async def create_key(ctx: Customer) -> Response:
    form = await checked_form(ctx)
    try:
        # Fields left empty are inherited from the signed-in key (the service's rule).
        settings = _key_settings(form)
        expires_at = form.expires_at()
        if expires_at is not None:
            settings["expires_at"] = expires_at
        created = await account_keys.create_key(ctx.rt, ctx.caller, settings)
    except (FormError, DreamRelayError) as exc:
        return redirect(ctx, KEYS_URL, error=exc)
    # The key itself is in this one answer only (never stored, never in a URL or a cookie).
    return await _keys_page(ctx, new_key=created)


@router.post("/keys/{key_id}")
async def change_key(ctx: Customer, key_id: str) -> Response:
    form = await checked_form(ctx)
    number = ascii_int(key_id, max_digits=9)
    if number is None:
        return error_page(ctx, 404, "error.not_found")
    action = form.get("action")
    try:
        if action == "delete":
            await account_keys.delete_key(ctx.rt, ctx.caller, number)
            return redirect(ctx, KEYS_URL, flash="flash.key_removed")
        if action not in ("disable", "enable"):
            return redirect(ctx, KEYS_URL, error="error.invalid_request")
        await account_keys.update_key(ctx.rt, ctx.caller, number, {"disabled": action == "disable"})
    except DreamRelayError as exc:
        return redirect(ctx, KEYS_URL, error=exc)
    return redirect(ctx, KEYS_URL, flash="flash.key_updated")


@router.post("/redeem")
async def redeem(ctx: Customer) -> Response:
    form = await checked_form(ctx)
    back = f"{COOKIE_PATH}/me/billing"
    client = ctx.request.client.host if ctx.request.client else "?"
    try:
        await credit_codes.redeem(ctx.rt, ctx.caller, form.get("code"), client_ip=client)
    except DreamRelayError as exc:
        return redirect(ctx, back, error=exc)
    return redirect(ctx, back, flash="flash.redeemed")
