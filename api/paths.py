"""Backburner's own paths. The router asks the site's routes only when none of its endpoints answered, so a
rewrite rule or a function's ``path`` never reaches those; ``backburner check`` says so where one covers them."""

from __future__ import annotations

from collections.abc import Callable

#: The management API, its documents and the health endpoints (each a prefix its endpoints live under).
API = (
    "/.netlify/functions",
    "/api/functions",
    "/api/runs",
    "/api/schedules",
    "/api/docs",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
)
#: The dashboard's pages (``/`` alone, the others with what is below them), on the API's port unless the dashboard
#: has its own (``--dashboard-port``).
DASHBOARD = ("/", "/functions", "/runs", "/schedules", "/login", "/logout", "/static")


def covered(matches: Callable[[str], object], paths: tuple[str, ...]) -> list[str]:
    """The ``paths`` that a pattern (``matches(path)``, None for no match) would take, itself or below it."""
    return [path for path in paths if matches(path) is not None or (path != "/" and matches(path + "/x") is not None)]
