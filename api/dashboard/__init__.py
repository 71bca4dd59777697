"""The dashboard at ``GET /``: server-rendered pages (jinja2), inline SVG charts and a little vanilla
JavaScript for live updates. Every asset ships in this package; nothing is fetched from elsewhere.

Pages: ``/`` (overview), ``/functions``, ``/runs``, ``/runs/{id}``, ``/login``. Outside ``dev`` they need a
login with the API token (``api.sessions``); every button is a CSRF-checked form post.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ..listeners import DashboardMount
from . import actions, auth, pages
from .web import STATIC_DIR, LoginRequired, PageError, on_login_required, on_page_error


def install(app: FastAPI) -> None:
    """Add the pages, the form actions, the static files and the error pages to ``app``."""
    app.include_router(auth.router)
    app.include_router(pages.router)
    app.include_router(actions.router)
    app.router.routes.append(DashboardMount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"))
    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(PageError, on_page_error)
