"""Whom a console route serves: dependencies that give a handler its context, or send a visitor to sign in."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dreamrelay.domain.errors import Forbidden, InvalidApiKey
from dreamrelay.http import errors
from dreamrelay.http.console.context import Ctx, Stop
from dreamrelay.http.console.visitors import check_csrf_header, context
from dreamrelay.services import limits


async def _visitor(request: Request) -> Ctx:
    return await context(request)


async def _operator(request: Request) -> Ctx:
    return await context(request, "admin")


async def _customer(request: Request) -> Ctx:
    return await context(request, "customer")


async def _api_caller(request: Request, *, post: bool) -> Ctx:
    """The customer's JSON API: the session cookie, a CSRF header on writes, the key's rate limit."""
    ctx = await context(request)
    if ctx.role != "customer":
        not_signed_in = InvalidApiKey("sign in to the console first", code="not_signed_in")
        raise Stop(errors.render(request, not_signed_in))
    if post and not check_csrf_header(ctx):
        raise Stop(errors.render(request, Forbidden("missing or wrong X-CSRF-Token", code="csrf_failed")))
    await limits.admit(ctx.rt, ctx.caller)  # counts like an API call; no headers shown
    return ctx


async def _api_reader(request: Request) -> Ctx:
    return await _api_caller(request, post=False)


async def _api_writer(request: Request) -> Ctx:
    return await _api_caller(request, post=True)


Visitor = Annotated[Ctx, Depends(_visitor)]  # anyone: sign-in pages
Operator = Annotated[Ctx, Depends(_operator)]  # signed in with the admin token
Customer = Annotated[Ctx, Depends(_customer)]  # signed in with a live API key
ApiReader = Annotated[Ctx, Depends(_api_reader)]
ApiWriter = Annotated[Ctx, Depends(_api_writer)]
