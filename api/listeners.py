"""Where the API listens, and the dashboard on a listener of its own (``--dashboard-port``).

By default one listener serves everything: the functions' URLs, the management API and the dashboard. A
synchronous function's response is then a page on the dashboard's origin: if it echoes input unescaped
(or its author is careless), its script runs next to a logged-in dashboard and can use the session. With
a dashboard port, one process listens twice:

- the **API listener** serves ``/.netlify/functions/...``, ``/api/...``, ``/openapi.json`` and the health
  and metrics endpoints, and accepts only the bearer token (a dashboard cookie, which browsers also send to
  other ports of the same host, counts for nothing there);
- the **dashboard listener** serves the dashboard pages and the management API that they use, with the
  session cookie, and never a function.

Each refuses the other's paths with a 404 that says where they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_response

#: Paths of the API listener; every other path is the dashboard's.
API_PATHS = ("/.netlify/", "/api/", "/openapi.json", "/healthz", "/readyz", "/metrics")
FUNCTION_PATHS = ("/.netlify/",)
_LISTENER = "backburner.listener"


@dataclass(frozen=True)
class Listen:
    """The addresses of the API and, when it has its own, of the dashboard."""

    host: str = "127.0.0.1"
    port: int = 8888
    dashboard_host: str | None = None
    dashboard_port: int | None = None

    @property
    def split(self) -> bool:
        return self.dashboard_port is not None

    @property
    def hosts(self) -> list[str]:
        return [self.host, self.dashboard_host or self.host] if self.split else [self.host]


def cookies_count(request: Request) -> bool:
    """False on the API listener of a split setup: there, only the bearer token authenticates."""
    return request.scope.get(_LISTENER) != "api"


class ListenerSplit:
    """ASGI middleware: tell requests on the dashboard port from the others and keep each to its paths."""

    def __init__(self, app: ASGIApp, listen: Listen) -> None:
        self.app = app
        self.listen = listen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        server = scope.get("server")
        dashboard = server is not None and server[1] == self.listen.dashboard_port
        scope[_LISTENER] = "dashboard" if dashboard else "api"
        path: str = scope["path"]
        if dashboard and path.startswith(FUNCTION_PATHS):
            message = f"Functions are not served on the dashboard's listener; call them on port {self.listen.port}."
            await error_response(404, "not_found", message)(scope, receive, send)
            return
        if not dashboard and not path.startswith(API_PATHS):
            message = f"The dashboard has its own listener: open it on port {self.listen.dashboard_port}."
            await error_response(404, "not_found", message)(scope, receive, send)
            return
        await self.app(scope, receive, send)
