"""Redirects name no host of the client's choosing: a Location that repeats the request's Host becomes relative.

Starlette answers ``/api/runs/`` with a 307 to ``/api/runs``, an absolute URL built from the request's Host header.
Outside `dev` nothing checks that header, so a client (or a cache one of them poisoned) could make the answer point
at any host. A relative Location (RFC 9110, 10.2.2) reaches the same resource and names none. Other redirects (an
artifact's presigned S3 URL) are left as they are.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def relative(location: str, host: str) -> str:
    """``location`` without its scheme and host if the host is ``host``; one leading slash (``//x`` would be a
    host again)."""
    parts = urlsplit(location)
    if not parts.netloc or parts.netloc.lower() != host.lower():
        return location
    return urlunsplit(("", "", "/" + parts.path.lstrip("/"), parts.query, parts.fragment))


class RelativeRedirects:
    """ASGI middleware: make a redirect to the request's own Host relative."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = Headers(scope=scope).get("host") if scope["type"] == "http" else None
        if not host:
            await self.app(scope, receive, send)
            return

        async def send_relative(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                headers = MutableHeaders(scope=message)
                if "location" in headers:
                    headers["location"] = relative(headers["location"], host)
            await send(message)

        await self.app(scope, receive, send_relative)
