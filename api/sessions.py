"""Browser sessions for the dashboard, and the cross-site request forgery (CSRF) defences.

The API token never goes into a cookie. Logging in with it creates a server-side session in Redis
(``<ns>:session:<SHA-256 of the id>``, expiring after 12 hours) and sets a cookie ``backburner_session``
(HTTP-only, SameSite=Strict, Secure over HTTPS) holding only its random id. Logging out deletes the session;
rotating the API token revokes every session made under the old one (each remembers a tag derived from the
token it was made with). Every API replica sees the same sessions.

Before login (and in ``dev`` without a token, where there is no login) a browser gets an anonymous session:
a signed cookie with a random nonce and nothing in Redis, so anonymous visitors cannot make the server store
anything. Its only job is to carry a CSRF token for the page's forms. The signing key is derived from the API
token and a random secret kept in Redis (``<ns>:dashboard:secret``).

A state-changing request authenticated by the cookie must also carry the session's CSRF token (a hidden form
field or the ``X-CSRF-Token`` header, an HMAC of the session's nonce) and must not come from another site
(``Sec-Fetch-Site``, ``Origin`` and ``Referer`` are checked when the browser sends them): a malicious page
cannot make a logged-in browser (or a developer's, on localhost) cancel runs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request

from jobs.keys import Keys

COOKIE = "backburner_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
#: How long a login lasts.
SESSION_TTL_S = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Session:
    nonce: str
    issued_at: int
    authenticated: bool


class Sessions:
    """Issues, reads and revokes session cookies, and makes and checks their CSRF tokens.

    ``client`` is the app's asyncio Redis client (``None`` only for anonymous sessions, in tests).
    """

    def __init__(self, key: bytes, client: Any = None, keys: Keys | None = None, ttl_s: int = SESSION_TTL_S) -> None:
        self._key = key
        self._client = client
        self._keys = keys or Keys("backburner")
        self.ttl_s = ttl_s
        #: Which token a session was made under: sessions of another token (before a rotation) are revoked.
        self._tag = self._sign("token-tag")[:22]

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())

    def anonymous(self) -> tuple[Session, str]:
        """A new anonymous session and its signed cookie value (nothing is stored)."""
        session = Session(secrets.token_urlsafe(16), int(time.time()), False)
        body = f"a1.{session.issued_at}.{session.nonce}"
        return session, f"{body}.{self._sign('session|' + body)}"

    async def login(self) -> tuple[Session, str]:
        """A new logged-in session, stored in Redis, and its cookie value (the random id alone)."""
        sid = secrets.token_urlsafe(32)
        session = Session(secrets.token_urlsafe(16), int(time.time()), True)
        record = json.dumps({"nonce": session.nonce, "issued_at": session.issued_at, "tag": self._tag})
        await self._client.set(self._redis_key(sid), record, ex=self.ttl_s)
        return session, f"s1.{sid}"

    async def read(self, value: str | None) -> Session | None:
        """The session a cookie value names, or None if it is missing, forged, expired or revoked."""
        if not value:
            return None
        if value.startswith("s1."):
            return await self._stored(value[3:])
        body, _, signature = value.rpartition(".")
        parts = body.split(".")
        if len(parts) != 3 or parts[0] != "a1" or not hmac.compare_digest(signature, self._sign("session|" + body)):
            return None
        try:
            issued_at = int(parts[1])
        except ValueError:
            return None
        if not 0 <= time.time() - issued_at <= self.ttl_s:
            return None
        return Session(parts[2], issued_at, False)

    async def _stored(self, sid: str) -> Session | None:
        if self._client is None or not _SESSION_ID.match(sid):
            return None
        key = self._redis_key(sid)
        raw = await self._client.get(key)
        if raw is None:
            return None
        try:
            record = json.loads(raw)
            session = Session(str(record["nonce"]), int(record["issued_at"]), True)
        except (ValueError, KeyError, TypeError):
            return None
        if not hmac.compare_digest(str(record.get("tag", "")), self._tag):
            await self._client.delete(key)  # made under a token that has since been rotated
            return None
        return session

    async def revoke(self, value: str | None) -> None:
        """Log a session out on the server (the cookie alone is worthless afterwards)."""
        if value and value.startswith("s1.") and _SESSION_ID.match(value[3:]) and self._client is not None:
            await self._client.delete(self._redis_key(value[3:]))

    def _redis_key(self, sid: str) -> str:
        return self._keys.session(hashlib.sha256(sid.encode()).hexdigest())

    def csrf(self, session: Session) -> str:
        return self._sign("csrf|" + session.nonce)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))


async def open_sessions(app: Any) -> Sessions:
    """The app's Sessions, made at start-up: reads (or creates, once per deployment) the Redis secret."""
    runtime, settings, client = app.state.runtime, app.state.settings, app.state.aclient
    key_name = runtime.store.keys.dashboard_secret
    await client.set(key_name, secrets.token_urlsafe(32), nx=True)
    secret = await client.get(key_name)
    secret = secret if isinstance(secret, bytes) else str(secret).encode()
    key = hmac.new(secret, (settings.api_token or "").encode(), hashlib.sha256).digest()
    return Sessions(key, client, runtime.store.keys)


async def sessions(request: Request) -> Sessions:
    """The app's Sessions: made in the lifespan, or on first use if Redis was down at start-up."""
    found: Sessions | None = request.app.state.sessions
    if found is None:
        found = request.app.state.sessions = await open_sessions(request.app)
    return found


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
