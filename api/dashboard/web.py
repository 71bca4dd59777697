"""What every dashboard page shares: templates, the viewer's session, CSRF-checked forms, headers, errors."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from jobs import clock
from jobs.errors import BackburnerError

from ..sessions import COOKIE, CSRF_FIELD, SESSION_TTL_S, Session, auth_required, same_site, secure_cookie, sessions
from .format import FILTERS

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters.update(FILTERS)
#: The biggest form a dashboard action accepts (a "run now" payload; the API's own limits apply after).
FORM_BYTES_CAP = 6 * 1024 * 1024

_versions = {
    path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:10] for path in STATIC_DIR.iterdir() if path.is_file()
}


def asset(name: str) -> str:
    """A static file's URL with a content hash, so browsers cache it until it changes."""
    return f"/static/{name}?v={_versions.get(name, '0')}"


templates.env.globals["asset"] = asset

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


@dataclass
class Viewer:
    """Who is looking: their session, the CSRF token for its forms, and whether logging out makes sense."""

    session: Session
    csrf: str
    login: bool
    new_cookie: str | None = None


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageError(Exception):
    """Shown as an error page with the status, a message and a way back."""

    def __init__(self, status: int, title: str, message: str, back: str | None = None) -> None:
        super().__init__(message)
        self.status, self.title, self.message, self.back = status, title, message, back


async def viewer(request: Request) -> Viewer:
    """The page's viewer; outside dev without a login this raises LoginRequired (a redirect to /login)."""
    store = await sessions(request)
    session = await store.read(request.cookies.get(COOKIE))
    if auth_required(request):
        if session is None or not session.authenticated:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(path)
        return Viewer(session, store.csrf(session), login=True)
    if session is None:  # dev without a token: an anonymous session, only so forms carry a CSRF token
        session, cookie = store.anonymous()
        return Viewer(session, store.csrf(session), login=False, new_cookie=cookie)
    return Viewer(session, store.csrf(session), login=False)


async def checked_form(request: Request, *, before_login: bool = False) -> tuple[Viewer, dict[str, str]]:
    """A state-changing form post: logged in (unless ``before_login``: the login form itself), same site,
    and carrying this session's CSRF token."""
    store = await sessions(request)
    if before_login:
        session = await store.read(request.cookies.get(COOKIE))
        seen = Viewer(session, store.csrf(session), login=False) if session is not None else None
    else:
        seen = await viewer(request)
    body = bytearray()
    async for chunk in request.stream():  # counted as it arrives: never more than the cap in memory
        body += chunk
        if len(body) > FORM_BYTES_CAP:
            raise PageError(413, "Too large", f"The form is over {FORM_BYTES_CAP // (1024 * 1024)} MB.")
    form = {key: values[0] for key, values in parse_qs(bytes(body).decode("utf-8", "replace")).items()}
    if (
        seen is None
        or seen.new_cookie
        or not same_site(request)
        or not store.csrf_ok(seen.session, form.get(CSRF_FIELD))
    ):
        raise PageError(
            403,
            "Action refused",
            "This form expired or was sent from another site, so nothing was changed. Reload the page and try again.",
        )
    return seen, form


def parse_moment(value: str | None, field: str) -> datetime | None:
    """A form's or filter's date and time (``2026-03-01T14:00``, UTC without a zone); a 400 page otherwise."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PageError(400, "Bad date", f"{field!r} must be a date and time like 2026-03-01T14:00.") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def set_session_cookie(request: Request, response: Response, value: str | None) -> None:
    """HTTP-only, SameSite=Strict, Secure over HTTPS; ``None`` clears it."""
    if value is None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=secure_cookie(request))
        return
    response.set_cookie(
        COOKIE, value, max_age=SESSION_TTL_S, path="/", httponly=True, samesite="strict", secure=secure_cookie(request)
    )


def render(
    request: Request, seen: Viewer | None, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    settings = request.app.state.settings
    values = {"viewer": seen, "now": clock.now(), "dev": settings.dev, "path": request.url.path, **context}
    response = templates.TemplateResponse(request, template, values, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    if seen is not None and seen.new_cookie:
        set_session_cookie(request, response, seen.new_cookie)
    return response


def redirect(url: str) -> RedirectResponse:
    """After a form post: 303, so reloading the next page does not post again."""
    return RedirectResponse(url, status_code=303)


@contextmanager
def friendly_errors(back: str | None = None) -> Iterator[None]:
    """Backburner's errors (not found, conflict, invalid input, Redis down) as an error page."""
    try:
        yield
    except BackburnerError as exc:
        titles = {404: "Not found", 409: "Not possible right now", 503: "Store unavailable"}
        raise PageError(exc.status, titles.get(exc.status, "Could not do that"), exc.message, back) from None


async def on_login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return redirect(f"/login?next={quote(exc.next_path, safe='/')}")


async def on_page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    try:
        seen: Viewer | None = await viewer(request)
    except LoginRequired:
        seen = None
    context = {"title": exc.title, "message": exc.message, "back": exc.back}
    return render(request, seen, "error.html", context, status=exc.status)
