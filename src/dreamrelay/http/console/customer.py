"""The customer's pages: their videos, the playground, one task, billing, callbacks, the API guide."""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError

from dreamrelay.domain.catalog import (
    ASPECT_RATIOS,
    DM_ACTIONS,
    DURATIONS,
    KLING_VIDEO_MODELS,
    MODELS,
    RAY32_RESOLUTIONS,
    RESOLUTIONS,
    UNI_MODELS,
)
from dreamrelay.domain.errors import DreamRelayError, InvalidRequest
from dreamrelay.http.console import forms, snippets
from dreamrelay.http.console.api import kling_video_task, uni_image
from dreamrelay.http.console.context import Ctx
from dreamrelay.http.console.deps import Customer
from dreamrelay.http.console.pages import error_page, redirect, render
from dreamrelay.http.console.session import COOKIE_PATH
from dreamrelay.http.console.task_view import task_view
from dreamrelay.http.console.visitors import checked_form
from dreamrelay.http.deps import describe
from dreamrelay.http.schemas.own import OwnSubmit
from dreamrelay.services import admin, generations, limits, views

PLAYGROUND_KLING_MODEL = "kling-v1-6"  # the Kling video model the playground offers
PLAYGROUND_SEEDANCE_MODEL = "doubao-seedance-1-0-pro-250528"  # and its Seedance model
router = APIRouter(prefix=f"{COOKIE_PATH}/me")

GRID_PAGE = 100


def _base(ctx: Ctx) -> str:
    return ctx.rt.settings.resolved_public_url


async def _balance(ctx: Ctx) -> int:
    return await views.balance(ctx.rt.db, ctx.signed_in.account_id)


@router.get("")
async def videos(ctx: Customer) -> Response:
    before = forms.number(ctx.request.query_params.get("before"))
    rows, balance = await views.account_tasks(
        ctx.rt.db, ctx.signed_in.account_id, before=before, limit=GRID_PAGE
    )
    cards = [task_view(row, ctx.rt.media_base_url, customer=True) for row in rows]
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


@router.get("/playground")
async def playground(ctx: Customer) -> Response:
    example = snippets.snippet(_base(ctx), "submit", "POST", "/luma/generations", snippets.submit_body())
    return render(
        ctx,
        "me_playground.html",
        balance=await _balance(ctx),
        # Videos (Ray 2, Ray 3.2), one Kling video and one Seedance model, and Uni-1 images (made through
        # the Agents API).
        models=[*MODELS, PLAYGROUND_KLING_MODEL, PLAYGROUND_SEEDANCE_MODEL, *UNI_MODELS],
        default_model=ctx.rt.settings.default_model,
        ratios=ASPECT_RATIOS,
        resolutions=list(dict.fromkeys((*RAY32_RESOLUTIONS, *RESOLUTIONS))),
        durations=DURATIONS,
        example=example,
        base=_base(ctx),
    )


@router.post("/playground")
async def playground_submit(ctx: Customer) -> Response:
    """Without JavaScript the playground form lands here; with it, the page calls /me/api/generations."""
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
            await limits.admit(ctx.rt, ctx.caller)
            task = await uni_image(ctx, fields)
            return redirect(ctx, f"{COOKIE_PATH}/me/tasks/{task.id}", flash="flash.submitted")
        if fields["model_name"] in KLING_VIDEO_MODELS:
            await limits.admit(ctx.rt, ctx.caller)
            task = await kling_video_task(ctx, fields)
            return redirect(ctx, f"{COOKIE_PATH}/me/tasks/{task.id}", flash="flash.submitted")
        checked = OwnSubmit.model_validate({k: v for k, v in fields.items() if v is not None})
        await limits.admit(ctx.rt, ctx.caller)  # counts like an API call; no headers shown
        task = await generations.submit_generation(ctx.rt, ctx.caller, checked.to_input())
    except ValidationError as exc:
        return redirect(ctx, back, error=InvalidRequest(describe(exc)))
    except DreamRelayError as exc:
        return redirect(ctx, back, error=exc)
    return redirect(ctx, f"{COOKIE_PATH}/me/tasks/{task.id}", flash="flash.submitted")


@router.get("/tasks/{task_id}")
async def my_task(ctx: Customer, task_id: str) -> Response:
    account = ctx.signed_in.account_id
    task, balance = await views.own_task(ctx.rt.db, account, task_id)
    if task is None:  # another account's task is as unknown as a made-up id
        return error_page(ctx, 404, "error.task_not_found")
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


@router.get("/billing")
async def billing(ctx: Customer) -> Response:
    offset = forms.offset(ctx.request.query_params.get("offset"))
    account = ctx.signed_in.account_id
    rows = await admin.ledger_entries(ctx.rt, account=account, limit=100, offset=offset)
    found = await admin.show_account(ctx.rt, account)
    return render(
        ctx,
        "me_billing.html",
        balance=found.balance,
        found=found,
        ledger=rows,
        offset=offset,
        older=f"{COOKIE_PATH}/me/billing?offset={offset + 100}" if len(rows) == 100 else None,
        call_list=[c for c in snippets.every_call(_base(ctx)) if c.id in ("account", "ledger")],
    )


@router.get("/callbacks")
async def callbacks(ctx: Customer) -> Response:
    account = ctx.signed_in.account_id
    secret = await admin.callback_secret(ctx.rt, account)
    rows = await admin.deliveries(ctx.rt, account=account, limit=50, with_attempts=True)
    return render(
        ctx,
        "me_callbacks.html",
        balance=await _balance(ctx),
        secret=secret,
        deliveries=rows,
        call_list=[c for c in snippets.every_call(_base(ctx)) if c.id in ("secret", "rotate", "deliveries")],
    )


@router.post("/callbacks/rotate")
async def rotate_secret(ctx: Customer) -> Response:
    await checked_form(ctx)
    await admin.callback_secret(ctx.rt, ctx.signed_in.account_id, rotate=True)
    return redirect(ctx, f"{COOKIE_PATH}/me/callbacks", flash="flash.secret_rotated")


@router.get("/api")
async def api_page(ctx: Customer) -> Response:
    return render(
        ctx,
        "me_api.html",
        balance=await _balance(ctx),
        call_list=snippets.every_call(_base(ctx)),
        base=_base(ctx),
    )
