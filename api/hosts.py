"""``dev``'s guard against DNS rebinding and cross-site writes, and the exposure rules for a listening address.

``dev`` serves run data without a token, so a web page must not be able to reach it through the
developer's browser. A page on ``evil.example`` can re-point its own name at 127.0.0.1 (DNS rebinding) and
then read ``http://evil.example:8888/api/runs`` as same-origin: the only tell is the ``Host`` header, so
``dev`` answers 400 to any Host that is not the bound address, ``localhost``, ``127.0.0.1`` or ``[::1]`` (or
a name listed in ``BACKBURNER_ALLOWED_HOSTS``). A page can still *send* a form or a fetch to
``http://localhost:8888`` without reading the answer, so every state-changing request whose ``Origin`` is
not one of those hosts (any port) gets 403. Requests without ``Origin`` (curl, the CLI, the Python client)
are not browsers' cross-site requests and pass.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_response

LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def normalise(host: str) -> str:
    """A host name or address as compared here: lower case, no brackets, no trailing dot."""
    return host.strip().strip("[]").rstrip(".").lower()


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); False for wildcards and other names."""
    name = normalise(host)
    address = _ip(name)
    return name == "localhost" or (address is not None and address.is_loopback)


def host_of(value: str) -> str | None:
    """The host part of a ``Host`` header (``[::1]:8888`` -> ``::1``), or None if it is malformed."""
    try:
        parsed = urlsplit(f"//{value}")
        parsed.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return None
    return normalise(parsed.hostname) if parsed.hostname else None


class HostAllowList:
    """The hosts ``dev`` answers to: the bound addresses, the loopback names, and any extra names.

    A wildcard bind (``0.0.0.0``, ``::``) listens on every address of the machine, so any IP literal is
    "the bound address"; rebinding needs a DNS name, so IP literals are safe to accept.
    """

    def __init__(self, bound: Iterable[str], extra: Iterable[str] = ()) -> None:
        bound = [normalise(host) for host in bound]
        self.any_address = any(host in WILDCARDS for host in bound)
        self.names = LOCAL_NAMES | {host for host in bound if host not in WILDCARDS} | {normalise(h) for h in extra}

    def allows(self, host: str | None) -> bool:
        if not host:
            return False
        return host in self.names or (self.any_address and _ip(host) is not None)


class DevGuard:
    """ASGI middleware for ``dev``: Host must be allowed (400), and a write's Origin too (403)."""

    def __init__(self, app: ASGIApp, hosts: HostAllowList) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host_header = origin = None
        for name, value in scope["headers"]:
            if name == b"host":
                host_header = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
        host = host_of(host_header) if host_header is not None else None
        if not self.hosts.allows(host):
            shown = "no Host header" if host_header is None else f"Host {host_header[:100]!r}"
            message = (
                f"`backburner dev` does not answer to {shown}: it serves only its bound address, localhost, "
                "127.0.0.1 and [::1] (protection against DNS rebinding). Add other names to BACKBURNER_ALLOWED_HOSTS."
            )
            await error_response(400, "host_not_allowed", message)(scope, receive, send)
            return
        if origin is not None and scope["method"] not in SAFE_METHODS and not self._origin_ok(origin):
            message = (
                f"Refused a {scope['method']} from the web page at {origin[:100]!r}: in `backburner dev`, only pages "
                "served from this machine (localhost, 127.0.0.1, [::1] or the bound address) may change anything."
            )
            await error_response(403, "forbidden_origin", message)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _origin_ok(self, origin: str) -> bool:
        try:
            parsed = urlsplit(origin)
            parsed.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError:
            return False
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            return False  # "null" (sandboxed frames, file: pages) and anything odd
        return self.hosts.allows(normalise(parsed.hostname))
