"""HEAD on Backburner's own GET endpoints: answered as the GET, without its body.

HTTP wants a HEAD answered wherever a GET is (RFC 9110, 9.3.2), and monitors and ``curl -I`` rely on it;
FastAPI's routes answer only the methods they name. A function's URL and the site's routes are left alone:
there a HEAD reaches the function as a HEAD, even on a path below one of Backburner's own.
"""

from __future__ import annotations

import contextlib

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _Sent(Exception):
    """The head is sent: what the GET would stream after it (Server-Sent Events, an artifact) is not made."""


def _answered_as_get(scope: Scope) -> bool:
    """Whether one of the app's own routes answers this path's GET, none of them its HEAD (a function's URL does:
    a function gets its HEAD as such, as does whatever the site's routes reach)."""
    as_head, as_get = dict(scope), {**scope, "method": "GET"}  # copies: a route may mark the scope it matched
    found = False
    for route in scope["app"].router.routes:
        if route.matches(as_head)[0] == Match.FULL:
            return False
        found = found or route.matches(as_get)[0] == Match.FULL
    return found


class HeadAsGet:
    """ASGI middleware: run a HEAD on an own endpoint as its GET, and send the answer's head only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or not _answered_as_get(scope):
            await self.app(scope, receive, send)
            return
        sent = False

        async def head_only(message: Message) -> None:
            nonlocal sent
            if sent:
                raise _Sent
            if message["type"] != "http.response.body":
                await send(message)
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            sent = True
            if message.get("more_body", False):
                raise _Sent

        with contextlib.suppress(_Sent):
            await self.app({**scope, "method": "GET"}, receive, head_only)
