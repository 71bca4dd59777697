"""Browser sessions for the dashboard, and the cross-site request forgery (CSRF) defences.

The API token never goes into a cookie. Logging in with it yields a signed session cookie
``backburner_session`` (HTTP-only, SameSite=Strict, Secure over HTTPS) that says when it was issued and
carries a random nonce. The signing key is derived from the API token and a random secret kept in Redis
(``<ns>:dashboard:secret``), so every API replica accepts the same cookies, and rotating the token logs
every browser out.

A state-changing request authenticated by that cookie must also carry the session's CSRF token (a hidden
form field or the ``X-CSRF-Token`` header, an HMAC of the nonce) and must not come from another site
(``Sec-Fetch-Site``, ``Origin`` and ``Referer`` are checked when the browser sends them). In ``dev``
without a token there is no login, but pages still get an anonymous session so their forms carry a CSRF
token: a malicious page cannot make a developer's browser cancel runs on localhost.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request
from starlette.concurrency import run_in_threadpool

COOKIE = "backburner_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
#: How long a login lasts.
SESSION_TTL_S = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Session:
    nonce: str
    issued_at: int
    authenticated: bool


class Sessions:
    """Issues and checks session cookies and CSRF tokens with one key."""

    def __init__(self, key: bytes, ttl_s: int = SESSION_TTL_S) -> None:
        self._key = key
        self.ttl_s = ttl_s

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())

    def issue(self, *, authenticated: bool) -> tuple[Session, str]:
        """A new session and its cookie value."""
        session = Session(secrets.token_urlsafe(16), int(time.time()), authenticated)
        body = f"v1.{session.issued_at}.{int(authenticated)}.{session.nonce}"
        return session, f"{body}.{self._sign('session|' + body)}"

    def read(self, value: str | None) -> Session | None:
        """The session in a cookie value, or None if it is missing, forged or expired."""
        if not value:
            return None
        body, _, signature = value.rpartition(".")
        parts = body.split(".")
        if len(parts) != 4 or parts[0] != "v1" or not hmac.compare_digest(signature, self._sign("session|" + body)):
            return None
        try:
            issued_at = int(parts[1])
        except ValueError:
            return None
        if not 0 <= time.time() - issued_at <= self.ttl_s:
            return None
        return Session(parts[3], issued_at, parts[2] == "1")

    def csrf(self, session: Session) -> str:
        return self._sign("csrf|" + session.nonce)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))


async def sessions(request: Request) -> Sessions:
    """The app's Sessions, built once per process (the first call reads or creates the Redis secret)."""
    cached: Sessions | None = getattr(request.app.state, "sessions", None)
    if cached is None:
        runtime = request.app.state.runtime
        settings = request.app.state.settings
        key_name = runtime.store.keys.dashboard_secret

        def load_secret() -> bytes:
            runtime.client.set(key_name, secrets.token_urlsafe(32), nx=True)
            value = runtime.client.get(key_name)
            return value if isinstance(value, bytes) else str(value).encode()

        secret = await run_in_threadpool(load_secret)
        key = hmac.new(secret, (settings.api_token or "").encode(), hashlib.sha256).digest()
        cached = request.app.state.sessions = Sessions(key)
    return cached


async def current_session(request: Request) -> Session | None:
    return (await sessions(request)).read(request.cookies.get(COOKIE))


def auth_required(request: Request) -> bool:
    """Outside ``dev`` (or in ``dev`` with a token set) every page and API call needs the token."""
    settings = request.app.state.settings
    return not (settings.dev and not settings.api_token)


def same_site(request: Request) -> bool:
    """False when the browser says the request comes from another site (or origin)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True  # privacy settings may strip both; the CSRF token still has to match
    return source != "null" and urlsplit(source).netloc == host


def secure_cookie(request: Request) -> bool:
    """Mark cookies Secure when the browser talks HTTPS (directly, or to a proxy that says so)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
    return request.url.scheme == "https" or forwarded == "https"
