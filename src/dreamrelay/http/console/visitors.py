"""Who is asking: the request's context as the console's dependencies build it (a session signed out on the
server, a replaced admin token, a disabled or expired key sign no one in), signing out, the way to sign
in, and forms checked for their CSRF token."""

from __future__ import annotations

import hmac
import time
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from dreamrelay.domain.ids import has_control
from dreamrelay.http.console.context import Ctx, Stop, language_of, signer_for
from dreamrelay.http.console.forms import Form, read_form
from dreamrelay.http.console.pages import error_page, redirect
from dreamrelay.http.console.session import (
    COOKIE,
    COOKIE_PATH,
    FLASH_COOKIE,
    SIGNED_IN_SECONDS,
    Session,
    token_fingerprint,
)
from dreamrelay.runtime import Runtime
from dreamrelay.services import console_sessions, views


async def context(request: Request, role: str | None = None) -> Ctx:
    """The request's context; with `role`, a visitor signed in otherwise is sent to sign in."""
    rt: Runtime = request.app.state.runtime
    signer = signer_for(request)
    session = signer.load(request.cookies.get(COOKIE))
    ctx = Ctx(request=request, rt=rt, signer=signer, session=session, lang=language_of(request))
    flash = signer.unsign("flash", request.cookies.get(FLASH_COOKIE))
    if flash is not None and flash.get("s") == (session.sid if session else None):
        ctx.flash = flash
    if session is not None and session.role != "anon" and await _signed_out(rt, session):
        ctx.session, ctx.drop_session, session = None, True, None
    if session is not None and session.role == "admin":
        if not hmac.compare_digest(session.admin_fp or "", token_fingerprint(rt.admin_token)):
            ctx.session, ctx.drop_session = None, True
    elif session is not None and session.role == "customer":
        key = await _live_key(rt, session)
        if key is None:
            ctx.session, ctx.drop_session = None, True
        ctx.key = key
    if role is not None and ctx.role != role:
        raise Stop(to_sign_in(ctx))
    return ctx


async def _signed_out(rt: Runtime, session: Session) -> bool:
    """Signed out on the server (by any process): a copy of the cookie no longer signs anyone in."""
    return await console_sessions.is_signed_out(rt.db, session.sid)


async def sign_out(ctx: Ctx) -> None:
    """End the request's session everywhere: the browser drops its cookie, the store the session."""
    if ctx.session is not None and ctx.session.role != "anon":
        await console_sessions.sign_out(ctx.rt.db, ctx.session.sid, time.time() + SIGNED_IN_SECONDS)
    ctx.drop_session = True
    ctx.key = None


async def _live_key(rt: Runtime, session: Session) -> views.SignedInKey | None:
    if session.key_id is None:
        return None
    key = await views.signed_in_key(rt.db, int(session.key_id))
    if key is None or key.account_id != session.account_id or key.disabled:
        return None
    if key.expires_at is not None and key.expires_at <= time.time():
        return None
    return key


def to_sign_in(ctx: Ctx) -> Response:
    target = ctx.request.url.path
    if ctx.request.method == "GET" and ctx.request.url.query:
        target += "?" + ctx.request.url.query
    signed_out = ctx.drop_session or ctx.session is not None
    suffix = "&reason=signed_out" if signed_out else ""
    return redirect(ctx, f"{COOKIE_PATH}/login?next={quote(target, safe='')}{suffix}")


def safe_next(value: str | None, default: str) -> str:
    """Only paths inside the console: never another site (open redirects)."""
    if not value or not value.startswith(COOKIE_PATH) or value.startswith("//") or "\\" in value:
        return default
    if any(ch in value for ch in "\r\n\t"):
        return default
    return value


async def checked_form(ctx: Ctx) -> Form:
    """The form, after its CSRF token proved it came from a page of this session; a value holding a
    control character (other than a line break in a text area) is refused: no column can keep a NUL."""
    form = await read_form(ctx.request)
    if not ctx.signer.check_csrf(ctx.session, form.get("csrf")):
        raise Stop(error_page(ctx, 403, "error.csrf"))
    if any(has_control(v.replace("\r\n", "").replace("\n", "")) for vs in form.fields.values() for v in vs):
        raise Stop(error_page(ctx, 400, "error.invalid_request"))
    return form


def check_csrf_header(ctx: Ctx) -> bool:
    return ctx.signer.check_csrf(ctx.session, ctx.request.headers.get("x-csrf-token"))
