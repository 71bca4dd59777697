"""Dependencies shared by the routers: the runtime, and the bearer token outside `dev`."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

from jobs.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    # async: a sync dependency would cost a thread-pool hop on every request.
    runtime: Runtime = request.app.state.runtime
    return runtime


async def require_token(request: Request) -> None:
    """Run data is never served without the API token, except in `dev`."""
    settings = request.app.state.settings
    if settings.dev and not settings.api_token:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not token:
        token = request.cookies.get("backburner_token", "")
        scheme = "bearer" if token else scheme
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), (settings.api_token or "").encode()):
        raise HTTPException(
            401,
            "Missing or wrong API token: send 'Authorization: Bearer <BACKBURNER_API_TOKEN>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Authorized = Depends(require_token)
