"""What the console answers: pages rendered from templates, redirects with a flash, JSON; gzip, cookies and
the security headers on every one."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup

from dreamrelay.domain.errors import DreamRelayError
from dreamrelay.formats.own import iso_millis
from dreamrelay.http.console.assets import HERE, static_url
from dreamrelay.http.console.context import Ctx
from dreamrelay.http.console.forms import FormError
from dreamrelay.http.console.i18n import has_key, js_strings
from dreamrelay.http.console.session import COOKIE, COOKIE_PATH, FLASH_COOKIE
from dreamrelay.http.errors import shown

GZIP_MIN_BYTES = 1024
LANG_COOKIE_SECONDS = 365 * 24 * 3600


def _when(value: float | str | None) -> str:
    """A <time> element in UTC; the page's script shows it in the reader's own time zone."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        iso = value
    else:
        moment = datetime.fromtimestamp(value, UTC)
        iso = iso_millis(value)
    shown = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(Markup('<time datetime="{}">{}</time>').format(iso, shown))


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.globals["static"] = static_url
ENV.globals["has_key"] = has_key
ENV.filters["when"] = lambda v: Markup(_when(v))
ENV.filters["seconds"] = _seconds
ENV.filters["credits"] = lambda v: f"{int(v):,}"


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src * data: blob:; "
    "media-src * blob:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


def _finish(ctx: Ctx, response: Response) -> Response:
    secure = ctx.secure_cookies
    if ctx.new_session is not None:
        response.set_cookie(
            COOKIE,
            ctx.signer.dump(ctx.new_session),
            max_age=int(ctx.new_session.expires_at - time.time()),
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=secure,
        )
    elif ctx.drop_session:
        response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax", secure=secure)
    if ctx.set_flash is not None:
        current = ctx.new_session or (None if ctx.drop_session else ctx.session)
        value = {**ctx.set_flash, "s": current.sid if current else None}
        response.set_cookie(
            FLASH_COOKIE,
            ctx.signer.sign("flash", value),
            max_age=120,
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=secure,
        )
    elif ctx.request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax", secure=secure)
    for name, cookie in ctx.extra_cookies.items():
        response.set_cookie(
            name, cookie, max_age=LANG_COOKIE_SECONDS, path=COOKIE_PATH, samesite="lax", secure=secure
        )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = CSP
    return response


def compressed(request: Request, body: bytes, media_type: str, status: int = 200) -> Response:
    if len(body) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        response = Response(gzip.compress(body, 6), status_code=status, media_type=media_type)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(body, status_code=status, media_type=media_type)
    response.headers["Vary"] = "Accept-Encoding"
    return response


NAV = {
    "admin": [
        ("nav.dashboard", "/console/admin"),
        ("nav.accounts", "/console/admin/accounts"),
        ("nav.channels", "/console/admin/channels"),
        ("nav.prices", "/console/admin/prices"),
        ("nav.codes", "/console/admin/codes"),
        ("nav.tasks", "/console/admin/tasks"),
    ],
    "customer": [
        ("nav.videos", "/console/me"),
        ("nav.playground", "/console/me/playground"),
        ("nav.billing", "/console/me/billing"),
        ("nav.keys", "/console/me/keys"),
        ("nav.callbacks", "/console/me/callbacks"),
        ("nav.api", "/console/me/api"),
    ],
}


def render(ctx: Ctx, template: str, status: int = 200, **values: Any) -> Response:
    path = ctx.request.url.path
    nav = [
        {
            "label": label,
            "href": href,
            "current": path == href or (href.count("/") > 2 and path.startswith(href + "/")),
        }
        for label, href in NAV.get(ctx.role, [])
    ]
    here = path + ("?" + ctx.request.url.query if ctx.request.url.query else "")
    html = ENV.get_template(template).render(
        t=ctx.t,
        lang=ctx.lang,
        csrf=ctx.csrf(),
        role=ctx.role,
        nav=nav,
        here=here,
        flash=ctx.flash,
        account=ctx.key.account if ctx.key else None,
        js_strings=js_strings(ctx.lang),
        **values,
    )
    return _finish(ctx, compressed(ctx.request, html.encode(), "text/html; charset=utf-8", status))


def redirect(
    ctx: Ctx, url: str, flash: str | None = None, error: DreamRelayError | FormError | str | None = None
) -> Response:
    """303 to `url` with a flash: `flash` (a message key) or `error` (a refusal, a form field that is
    not a number we take, or a message key)."""
    if isinstance(error, FormError):
        error = "error.number"
    if flash is not None:
        ctx.set_flash = {"kind": "ok", "key": flash, "detail": ""}
    if error is not None:
        if isinstance(error, DreamRelayError):
            key = f"error.{error.code}" if has_key(f"error.{error.code}") else "error.generic"
            detail = shown(ctx.request.method, ctx.request.url.path, error)
            ctx.set_flash = {"kind": "error", "key": key, "detail": detail}
        else:
            ctx.set_flash = {"kind": "error", "key": error, "detail": ""}
    return _finish(ctx, Response(status_code=303, headers={"Location": url}))


def error_page(ctx: Ctx, status: int, message: str) -> Response:
    return render(ctx, "error.html", status=status, status_code=status, message=message)


def json_response(ctx: Ctx, body: bytes, status: int = 200) -> Response:
    return _finish(ctx, compressed(ctx.request, body, "application/json", status))
