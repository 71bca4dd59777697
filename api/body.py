"""Reading request bodies under the function kind's limit, without buffering more than the limit."""

from __future__ import annotations

from fastapi import Request

from jobs.errors import PayloadTooLarge
from jobs.site import Function


def _too_large(function: Function, size: int | str, limit: int) -> PayloadTooLarge:
    kind = "background" if function.background else "synchronous"
    return PayloadTooLarge(
        f"Request body is {size} bytes; {kind} function {function.name!r} accepts at most "
        f"{limit} bytes ({limit // 1024} KB)."
    )


async def read_body(request: Request, function: Function, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(function, declared, limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(function, f"more than {limit}", limit)
    return bytes(body)
