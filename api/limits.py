"""Size limits for every request, checked before any route runs, so nothing is stored for a refused one.

A background call stores its whole event (every header twice: ``headers`` and ``multiValueHeaders``), so
without these a public caller could write megabytes into Redis per request. The limits follow common
servers and proxies: one header (name and value) at most 8 KB, all headers together at most 32 KB, the
URL (path and query string) at most 8 KB. Answers are JSON: 431 for headers, 414 for the URL, 413 for a
body over the largest limit any endpoint has (a chunked body is counted as it arrives).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobs.site import SYNC_BODY_LIMIT

from .errors import error_response

#: One header, name and value together.
HEADER_BYTES = 8 * 1024
#: All headers together (names and values).
HEADERS_BYTES = 32 * 1024
#: The path and the query string together, as sent (percent-encoded).
URL_BYTES = 8 * 1024
#: No endpoint accepts a bigger body than a synchronous function (6 MB); function and form limits are lower.
BODY_BYTES = SYNC_BODY_LIMIT


def _shown(name: bytes) -> str:
    text = name.decode("latin-1")
    return repr(text if len(text) <= 40 else text[:40] + "...")


def check_head(scope: Scope) -> tuple[int, str, str] | None:
    """``(status, code, message)`` when the request line or headers are over a limit, else None."""
    if not scope["path"].startswith("/"):  # "OPTIONS *" and other targets that are not a path
        return 400, "bad_request", f"The request target {scope['path'][:40]!r} is not a path; send one starting with /."
    url = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string") or b"")
    if url > URL_BYTES:
        return 414, "url_too_long", f"The URL is {url} bytes; at most {URL_BYTES} bytes (8 KB) are accepted."
    total = 0
    framing = set()
    for name, value in scope["headers"]:
        size = len(name) + len(value)
        if size > HEADER_BYTES:
            message = f"Header {_shown(name)} is {size} bytes; one header may have at most {HEADER_BYTES} bytes (8 KB)."
            return 431, "header_too_large", message
        total += size
        if name in (b"content-length", b"transfer-encoding"):
            framing.add(name)
    if total > HEADERS_BYTES:
        message = f"The headers are {total} bytes together; at most {HEADERS_BYTES} bytes (32 KB) are accepted."
        return 431, "headers_too_large", message
    if len(framing) == 2:  # the classic request-smuggling ambiguity: refuse rather than pick one
        return 400, "bad_request", "Send Content-Length or Transfer-Encoding, not both."
    return None


class RequestLimits:
    """ASGI middleware: refuse oversized request heads at once, and cap chunked bodies as they arrive."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = check_head(scope)
        if problem is not None:
            status, code, message = problem
            await error_response(status, code, message, {"connection": "close"})(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > BODY_BYTES:
            message = f"The request body is {declared} bytes; no endpoint accepts more than {BODY_BYTES} bytes."
            await error_response(413, "payload_too_large", message, {"connection": "close"})(scope, receive, send)
            return
        await self.app(scope, receive if declared is not None else _capped(receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _capped(receive: Receive) -> Receive:
    """A body without Content-Length (chunked) is counted as it arrives; past the cap the route gets a 413."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > BODY_BYTES:
                # An HTTPException, which FastAPI lets through while it reads a body (anything else becomes a 400).
                raise HTTPException(413, f"The request body is over {BODY_BYTES} bytes, the most any endpoint accepts.")
        return message

    return wrapped
