"""Dependencies shared by the routers: the runtime, and the bearer token outside `dev`."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

from jobs.runtime import Runtime

from .sessions import COOKIE, CSRF_HEADER, SAFE_METHODS, auth_required, same_site, sessions


async def get_runtime(request: Request) -> Runtime:
    # async: a sync dependency would cost a thread-pool hop on every request.
    runtime: Runtime = request.app.state.runtime
    return runtime


async def require_token(request: Request) -> None:
    """Run data is never served without the API token (or a dashboard session), except in `dev`.

    A dashboard session cookie (``api.sessions``) counts as the token, but a request that changes
    something with it must also carry the session's CSRF token and come from the same site.
    """
    unsafe = request.method not in SAFE_METHODS
    if unsafe and request.headers.get("sec-fetch-site") == "cross-site":
        raise HTTPException(403, "Cross-site requests cannot change anything here.")
    if not auth_required(request):
        return
    settings = request.app.state.settings
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if token:
        if scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), (settings.api_token or "").encode()):
            return
    else:
        store = await sessions(request)
        session = store.read(request.cookies.get(COOKIE))
        if session is not None and session.authenticated:
            if unsafe and not (same_site(request) and store.csrf_ok(session, request.headers.get(CSRF_HEADER))):
                raise HTTPException(403, "Missing or wrong CSRF token (send the page's X-CSRF-Token header).")
            return
    raise HTTPException(
        401,
        "Missing or wrong API token: send 'Authorization: Bearer <BACKBURNER_API_TOKEN>'.",
        headers={"WWW-Authenticate": "Bearer"},
    )


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Authorized = Depends(require_token)
