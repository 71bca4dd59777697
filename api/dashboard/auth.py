"""Logging in with the API token, and out.

The login form posts the token once; the answer is a new server-side session (``api.sessions``), so a
session planted before login is worthless, and logging out deletes it on the server. The form itself
carries the CSRF token of an anonymous pre-login session, so another site cannot log a browser into this
dashboard either. Wrong tokens count against the client's address like wrong bearer tokens
(``api.throttle``): past the allowance the form answers 429 until the window ends.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..listeners import DashboardRoute
from ..sessions import COOKIE, auth_required, sessions
from ..throttle import client_address, throttle
from .web import PageError, Viewer, checked_form, redirect, render, set_session_cookie, viewer

router = APIRouter(include_in_schema=False, route_class=DashboardRoute)


def _safe_next(value: str | None) -> str:
    """Only paths on this site: never ``//evil.example`` or ``https://...``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


async def _anonymous(request: Request) -> Viewer:
    store = await sessions(request)
    session, cookie = store.anonymous()
    return Viewer(session, store.csrf(session), login=False, new_cookie=cookie)


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    if not auth_required(request):
        return redirect(_safe_next(next))
    store = await sessions(request)
    current = await store.read(request.cookies.get(COOKIE))
    if current is not None and current.authenticated:
        return redirect(_safe_next(next))
    seen = await _anonymous(request) if current is None else Viewer(current, store.csrf(current), login=False)
    return render(request, seen, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login")
async def login(request: Request) -> Response:
    if not auth_required(request):
        return redirect("/")
    try:
        _, form = await checked_form(request, before_login=True)
    except PageError:
        seen = await _anonymous(request)
        message = "The login form expired. Please try again."
        return render(request, seen, "login.html", {"next": "/", "error": message}, status=403)
    settings = request.app.state.settings
    target = _safe_next(form.get("next"))
    guard, address = throttle(request), client_address(request)
    wait = await guard.blocked(address)
    if wait is None and not hmac.compare_digest(form.get("token", "").encode(), (settings.api_token or "").encode()):
        wait = await guard.failed(address, "dashboard login")
        if wait is None:
            seen = await _anonymous(request)
            context = {"next": target, "error": "That is not the API token."}
            return render(request, seen, "login.html", context, status=401)
    if wait is not None:
        seen = await _anonymous(request)
        context = {"next": target, "error": f"Too many failed logins from your address. Try again in {wait} s."}
        refused = render(request, seen, "login.html", context, status=429)
        refused.headers["retry-after"] = str(wait)
        return refused
    _, cookie = await (await sessions(request)).login()
    response = redirect(target)
    set_session_cookie(request, response, cookie)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await checked_form(request)
    await (await sessions(request)).revoke(request.cookies.get(COOKIE))
    response = redirect("/login" if auth_required(request) else "/")
    set_session_cookie(request, response, None)
    return response


__all__ = ["router", "viewer"]
