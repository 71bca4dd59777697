"""Dependencies shared by the routers: the runtime, and the bearer token outside `dev`."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.exceptions import HTTPException

from jobs.errors import RunNotFound
from jobs.runs import RUN_ID_PATTERN, is_run_id
from jobs.runtime import Runtime

from .listeners import cookies_count
from .sessions import COOKIE, CSRF_HEADER, SAFE_METHODS, auth_required, same_site, sessions
from .throttle import client_address, throttle


async def get_runtime(request: Request) -> Runtime:
    # async: a sync dependency would cost a thread-pool hop on every request.
    runtime: Runtime = request.app.state.runtime
    return runtime


def too_many_attempts(wait_s: int) -> HTTPException:
    return HTTPException(
        429,
        f"Too many failed authentication attempts from this address; try again in {wait_s} s.",
        headers={"Retry-After": str(wait_s)},
    )


async def require_token(request: Request) -> None:
    """Run data is never served without the API token (or a dashboard session), except in `dev`.

    A dashboard session cookie (``api.sessions``) counts as the token, but a request that changes
    something with it must also carry the session's CSRF token and come from the same site. Wrong
    tokens are counted per client address (``api.throttle``): past the allowance, 429.
    """
    unsafe = request.method not in SAFE_METHODS
    if unsafe and request.headers.get("sec-fetch-site") == "cross-site":
        raise HTTPException(403, "Cross-site requests cannot change anything here.")
    if not auth_required(request):
        return
    settings = request.app.state.settings
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if token:
        guard, address = throttle(request), client_address(request)
        wait = await guard.blocked(address)
        if wait is not None:
            raise too_many_attempts(wait)
        if scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), (settings.api_token or "").encode()):
            return
        wait = await guard.failed(address, "Authorization header")
        if wait is not None:
            raise too_many_attempts(wait)
    elif cookies_count(request):
        store = await sessions(request)
        session = await store.read(request.cookies.get(COOKIE))
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


def _run_id(
    run_id: str = Path(description="A run id (a 26-character ULID)", json_schema_extra={"pattern": RUN_ID_PATTERN}),
) -> str:
    """A run id is checked before it names a Redis key: a malformed one is no run (404), never a lookup."""
    if not is_run_id(run_id):
        raise RunNotFound(run_id if len(run_id) <= 60 else run_id[:60] + "...")
    return run_id


async def single_valued(request: Request) -> None:
    """Every query parameter of the management API takes one value; given twice, FastAPI would keep the last and
    let an invalid first one pass unseen (``limit=abc&limit=1``)."""
    params = request.query_params
    for key in params:
        if len(given := params.getlist(key)) > 1:
            raise HTTPException(400, f"Query parameter {key!r} is given {len(given)} times; give it once.")


RunId = Annotated[str, Depends(_run_id)]
#: The management API's routers: the token (or a dashboard session) first, then one value per query parameter.
Authorized = Depends(require_token)
SingleValued = Depends(single_valued)
