"""The operator's credit codes and each account's cap on self-service keys, in the console (thin pages
over services/credit_codes.py and services/admin.py)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response

from dreamrelay.domain.errors import DreamRelayError
from dreamrelay.http.console.context import Ctx
from dreamrelay.http.console.deps import Operator
from dreamrelay.http.console.forms import FormError
from dreamrelay.http.console.pages import redirect, render
from dreamrelay.http.console.session import COOKIE_PATH
from dreamrelay.http.console.visitors import checked_form
from dreamrelay.services import admin, credit_codes
from dreamrelay.services.admin_views import CodeBatch

router = APIRouter(prefix=f"{COOKIE_PATH}/admin")

CODES_URL = f"{COOKIE_PATH}/admin/codes"


async def _codes_page(ctx: Ctx, *, made: CodeBatch | None = None) -> Response:
    query = ctx.request.query_params
    status = query.get("status") or ""
    batch = (query.get("batch") or "")[:32] or None
    try:
        codes = await credit_codes.list_codes(ctx.rt, batch=batch, status=status or None, limit=500)
    except DreamRelayError:
        codes, status = await credit_codes.list_codes(ctx.rt, batch=batch, limit=500), ""
    return render(ctx, "admin_codes.html", codes=codes, made=made, chosen=status)


@router.get("/codes")
async def codes_page(ctx: Operator) -> Response:
    return await _codes_page(ctx)


@router.post("/codes")
async def create_codes(ctx: Operator) -> Response:
    form = await checked_form(ctx)
    try:
        amount, count = form.optional_int("amount"), form.optional_int("count") or 1
        expires_at = form.expires_at()
        if amount is None:
            raise FormError("amount")
        made = await credit_codes.create_codes(
            ctx.rt, amount=amount, count=count, expires_at=expires_at, note=form.get("note")
        )
    except (FormError, DreamRelayError) as exc:
        return redirect(ctx, CODES_URL, error=exc)
    # The codes are in this one answer only: only their hashes are stored.
    return await _codes_page(ctx, made=made)


@router.post("/accounts/{name}/max_keys")
async def set_max_keys(ctx: Operator, name: str) -> Response:
    form = await checked_form(ctx)
    back = f"{COOKIE_PATH}/admin/accounts/{quote(name, safe='')}"
    try:
        await admin.set_max_keys(ctx.rt, name, form.optional_int("max_keys"))
    except (FormError, DreamRelayError) as exc:
        return redirect(ctx, back, error=exc)
    return redirect(ctx, back, flash="flash.max_keys_set")
