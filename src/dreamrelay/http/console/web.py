"""The console's plumbing: who is signed in, rendering (templates, gzip, headers), cookies, forms, CSRF."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import Response
from markupsafe import Markup

from dreamrelay.domain.errors import DreamRelayError
from dreamrelay.domain.ids import has_control
from dreamrelay.formats.own import iso_millis
from dreamrelay.http.console.i18n import DEFAULT_LANGUAGE, LANGUAGES, has_key, js_strings, translator
from dreamrelay.http.console.session import (
    COOKIE,
    COOKIE_PATH,
    FLASH_COOKIE,
    LANG_COOKIE,
    SIGNED_IN_SECONDS,
    Session,
    Signer,
    load_secret,
    token_fingerprint,
)
from dreamrelay.http.errors import shown
from dreamrelay.runtime import Runtime
from dreamrelay.services import console_sessions, views
from dreamrelay.services.auth import Caller

HERE = Path(__file__).parent
GZIP_MIN_BYTES = 1024
LANG_COOKIE_SECONDS = 365 * 24 * 3600


# ---- static assets: read once, served with a content hash in the URL -------------------------------
@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    version: str


def _load_assets() -> dict[str, Asset]:
    types = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
    assets = {}
    for path in sorted((HERE / "static").iterdir()):
        if path.suffix in types:
            body = path.read_bytes()
            assets[path.name] = Asset(
                body=body,
                gzipped=gzip.compress(body, 9, mtime=0),
                media_type=types[path.suffix],
                version=hashlib.sha256(body).hexdigest()[:10],
            )
    return assets


ASSETS = _load_assets()


def static_url(name: str) -> str:
    return f"{COOKIE_PATH}/static/{name}?v={ASSETS[name].version}"


# ---- templates ------------------------------------------------------------------------------------
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


# ---- who is asking ------------------------------------------------------------------------------
class Stop(Exception):
    """Ends a handler (or its dependency) early with this response (a redirect to sign in, an error page);
    `install` answers it."""

    def __init__(self, response: Response) -> None:
        self.response = response


def install(app: FastAPI) -> None:
    async def on_stop(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Stop)
        return exc.response

    app.add_exception_handler(Stop, on_stop)


HOME = {"admin": f"{COOKIE_PATH}/admin", "customer": f"{COOKIE_PATH}/me"}


def signer_for(request: Request) -> Signer:
    state = request.app.state
    signer: Signer | None = getattr(state, "console_signer", None)
    if signer is None:
        rt: Runtime = state.runtime
        signer = Signer(load_secret(rt.settings))
        state.console_signer = signer
    return signer


def language_of(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    accepted = request.headers.get("accept-language", "").lower()
    for part in accepted.split(","):
        tag = part.split(";")[0].strip()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LANGUAGE


@dataclass
class Ctx:
    """One console request: the runtime, the session, the language, and cookies to send back."""

    request: Request
    rt: Runtime
    signer: Signer
    session: Session | None
    lang: str
    key: views.SignedInKey | None = None
    new_session: Session | None = None
    drop_session: bool = False
    flash: dict[str, Any] | None = None
    set_flash: dict[str, Any] | None = None
    extra_cookies: dict[str, str] = field(default_factory=dict)

    @property
    def role(self) -> str:
        current = self.new_session or self.session
        return current.role if current and not self.drop_session else "anon"

    @property
    def signed_in(self) -> views.SignedInKey:
        """The customer's key (customer pages only: their dependency signs everyone else out)."""
        assert self.key is not None
        return self.key

    @property
    def caller(self) -> Caller:
        assert self.key is not None
        return self.key.caller

    def t(self, key: str, **values: Any) -> str:
        return translator(self.lang)(key, **values)

    def csrf(self) -> str:
        current = self.new_session or self.session
        return self.signer.csrf_token(current) if current else ""

    def ensure_session(self) -> Session:
        """The session to tie a form to; an anonymous one is made for the sign-in page."""
        if self.session is None and self.new_session is None:
            self.new_session = Session.anonymous()
        current = self.new_session or self.session
        assert current is not None
        return current

    @property
    def secure_cookies(self) -> bool:
        return self.request.url.scheme == "https" or (self.rt.settings.public_url or "").startswith("https:")


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


# ---- forms ------------------------------------------------------------------------------------------
LARGEST_NUMBER = 2**53 - 1  # fits every integer column and a browser's number
MAX_EXPIRY_DAYS = 3650  # of a customer's key or a credit code


class Form:
    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0].strip() if values else default

    def getlist(self, name: str) -> list[str]:
        return [v.strip() for v in self.fields.get(name, [])]

    def optional_int(self, name: str) -> int | None:
        text = self.get(name).replace(",", "").replace("_", "")
        if not text:
            return None
        try:
            value = int(text)
        except ValueError as exc:
            raise FormError(name) from exc
        if abs(value) > LARGEST_NUMBER:
            raise FormError(name)
        return value

    def expires_at(self, name: str = "expires_days") -> float | None:
        """The moment `name` days (1 to MAX_EXPIRY_DAYS) from now; None when the field is empty."""
        days = self.optional_int(name)
        if days is None:
            return None
        if not 1 <= days <= MAX_EXPIRY_DAYS:
            raise FormError(name)
        return time.time() + days * 86400


class FormError(Exception):
    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


async def read_form(request: Request) -> Form:
    """An application/x-www-form-urlencoded body (our forms send nothing else)."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
        return Form(parse_qs(text, keep_blank_values=True, max_num_fields=200))
    except (UnicodeDecodeError, ValueError):  # not UTF-8, or more fields than any form of ours has
        return Form({})


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


# ---- responses --------------------------------------------------------------------------------------
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
