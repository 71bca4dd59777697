"""Where the API listens, and the dashboard on a listener of its own (``--dashboard-port``).

By default one listener serves everything: the functions (their Netlify URLs and the site's routes),
the management API and the dashboard. A synchronous function's response is then a page on the
dashboard's origin: if it echoes input unescaped (or its author is careless), its script runs next to
a logged-in dashboard and can use the session. With a dashboard port, one process listens twice:

- the **API listener** serves ``/.netlify/functions/...``, the site's routes, ``/api/...``,
  ``/openapi.json`` and the health and metrics endpoints, and accepts only the bearer token (a
  dashboard cookie, which browsers also send to other ports of the same host, counts for nothing
  there). The dashboard's paths do not exist on it, so a site route may use them (``/``, say);
- the **dashboard listener** serves the dashboard and the management API its pages use, with the
  session cookie, and never runs a function.

``ListenerSplit`` marks each request with the listener it came in on; dashboard routes and function
routes are route classes that do not match on the other listener, so such a request ends in
``api.routes.routed``, which runs a site route (API listener) or says where to go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.routing import Match, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

_LISTENER = "backburner.listener"
_DASHBOARD_PATH = "backburner.dashboard_path"


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


def listener(scope: Scope) -> str | None:
    """``"api"`` or ``"dashboard"`` in a split setup, else None (one listener serves everything)."""
    return scope.get(_LISTENER)


def is_dashboard_path(scope: Scope) -> bool:
    """True when a dashboard route would have answered this request on the dashboard's listener."""
    return bool(scope.get(_DASHBOARD_PATH))


def cookies_count(request: Request) -> bool:
    """False on the API listener of a split setup: there, only the bearer token authenticates."""
    return listener(request.scope) != "api"


def _dashboard_only(scope: Scope, found: tuple[Match, Scope]) -> tuple[Match, Scope]:
    """A dashboard route's match, or none on the API listener of a split setup (which then says where the
    dashboard is)."""
    if found[0] != Match.NONE and listener(scope) == "api":
        scope[_DASHBOARD_PATH] = True
        return Match.NONE, {}
    return found


class DashboardRoute(APIRoute):
    """A dashboard page or action: absent from the API listener of a split setup."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return _dashboard_only(scope, super().matches(scope))


class DashboardMount(Mount):
    """The dashboard's static files: absent from the API listener of a split setup."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return _dashboard_only(scope, super().matches(scope))


class FunctionRoute(Route):
    """A function's Netlify URL, for any method (as on Netlify): absent from the dashboard's listener of a split
    setup."""

    def __init__(self, path: str, endpoint: Callable[..., Any]) -> None:
        super().__init__(path, endpoint)
        self.methods = None  # every method reaches the function (Starlette would allow only GET and HEAD)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if listener(scope) == "dashboard":
            return Match.NONE, {}
        return super().matches(scope)


class ListenerSplit:
    """ASGI middleware: mark each request with the listener (by local port) it came in on."""

    def __init__(self, app: ASGIApp, listen: Listen) -> None:
        self.app = app
        self.listen = listen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            server: Any = scope.get("server")
            scope[_LISTENER] = "dashboard" if server is not None and server[1] == self.listen.dashboard_port else "api"
        await self.app(scope, receive, send)
