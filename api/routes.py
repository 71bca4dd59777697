"""The site's own routes: requests that none of Backburner's endpoints answers.

The router asks this only after every Backburner route missed (``/.netlify/functions/``, ``/api/...``,
``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json``, the dashboard), so a rewrite or a function's
``path`` never shadows them, forced or not: they are the platform's paths, as ``/.netlify/`` is on Netlify.
What matches is in ``jobs.site.routes``; a match runs the function exactly as its Netlify URL would (same
limits, 202 and headers for background functions), with the event's ``path`` the one the caller used (and,
reached through the function's own ``path``, its ``route``: the pattern that matched).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketClose

from .invoke import invoke
from .listeners import is_dashboard_path, listener


async def routed(scope: Scope, receive: Receive, send: Send) -> None:
    """The router's default app: run the function a route names, else a JSON 404 saying why."""
    if scope["type"] == "websocket":
        await _refuse_websocket(scope, receive, send)
        return
    request = Request(scope, receive)
    listen = request.app.state.listen
    if listener(scope) == "dashboard":
        raise HTTPException(
            404, f"Functions are not served on the dashboard's listener; call them on port {listen.port}."
        )
    site = request.app.state.runtime.site
    found = site.routes.match(scope["path"], request.query_params.multi_items(), request.cookies)
    if found.function is None:
        if is_dashboard_path(scope):
            raise HTTPException(404, f"The dashboard has its own listener: open it on port {listen.dashboard_port}.")
        raise HTTPException(404, (found.message or "Not Found") + request.app.state.runtime.sites.stale_note())
    scope["path_params"] = {"name": found.function}
    if found.route is not None:  # the event's `route`, as on Netlify: the function's own path that matched
        scope["backburner.route"] = found.route.pattern.source
    response = await invoke(Request(scope, receive))
    await response(scope, receive, send)


async def _refuse_websocket(scope: Scope, receive: Receive, send: Send) -> None:
    """Backburner serves no WebSocket: say so in a JSON 404 where the server can answer a handshake with one
    (uvicorn can), else close it (the server answers 403)."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await WebSocketClose()(scope, receive, send)
        return
    message = "Backburner serves no WebSocket; follow a run with GET /api/runs/{id}/events (Server-Sent Events)."
    body = {"error": {"code": "not_found", "message": message}}
    await WebSocket(scope, receive, send).send_denial_response(JSONResponse(body, status_code=404))
