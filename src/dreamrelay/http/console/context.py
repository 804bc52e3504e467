"""One console request's context (`Ctx`): the runtime, the session, the language, and the cookies to send
back; `Stop` ends a handler early with a response."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from dreamrelay.http.console.i18n import DEFAULT_LANGUAGE, LANGUAGES, translator
from dreamrelay.http.console.session import COOKIE_PATH, LANG_COOKIE, Session, Signer, load_secret
from dreamrelay.runtime import Runtime
from dreamrelay.services import views
from dreamrelay.services.auth import Caller

HOME = {"admin": f"{COOKIE_PATH}/admin", "customer": f"{COOKIE_PATH}/me"}


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
