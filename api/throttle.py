"""Failed authentication attempts, counted per client address in Redis (so across every API replica).

Every wrong bearer token and every wrong dashboard login counts. Once an address has used up
``BACKBURNER_AUTH_FAILURE_LIMIT`` failures (default 10) in ``BACKBURNER_AUTH_FAILURE_WINDOW`` seconds (default
300, counted from its first failure), it gets 429 with ``Retry-After`` until the window ends, even with the
right token: otherwise a blocked guesser would still learn which guess was right. Each failure is one
``INCR``, so 40 parallel guesses get exactly ``limit`` 401s and 429s for the rest.

The address is the one uvicorn reports: behind a reverse proxy, list the proxy in ``FORWARDED_ALLOW_IPS`` so
the client's own address (from ``X-Forwarded-For``) is used. IPv6 clients are counted per /64, the block a
single host usually has. Failures are logged with the address and the count, never with what was sent.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from typing import Any

from fastapi import Request

from jobs.keys import Keys

log = logging.getLogger("backburner.api.auth")

#: INCR the address's counter, start its window on the first failure; answer the count and the ms left.
_FAIL = """
local n = redis.call("INCR", KEYS[1])
if n == 1 then redis.call("PEXPIRE", KEYS[1], ARGV[1]) end
return {n, redis.call("PTTL", KEYS[1])}
"""


def client_address(request: Request) -> str:
    """The client's address as counted: an IPv4 address, an IPv6 /64, or ``unknown``."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address.ipv4_mapped or address) if isinstance(address, ipaddress.IPv6Address) else str(address)


class AuthThrottle:
    """Counts failures per address; ``blocked`` says for how long an address must wait (seconds) or None."""

    def __init__(self, client: Any, keys: Keys, *, limit: int, window_s: float) -> None:
        self.client = client  # redis.asyncio.Redis
        self.keys = keys
        self.limit = max(1, limit)
        self.window_ms = max(1, int(window_s * 1000))
        self._fail = client.register_script(_FAIL)

    async def blocked(self, address: str) -> int | None:
        key = self.keys.auth_failures(address)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            count, ttl = await pipe.execute()
        if count is None or int(count) < self.limit:
            return None
        return _seconds(ttl)

    async def failed(self, address: str, what: str) -> int | None:
        """Record a failure; the seconds to wait if this one went past the allowance (else answer 401)."""
        count, ttl = await self._fail(keys=[self.keys.auth_failures(address)], args=[self.window_ms])
        window = self.window_ms / 1000
        if count <= self.limit:
            log.warning(
                "wrong API token (%s) from %s (%d of %d allowed in %gs)", what, address, count, self.limit, window
            )
        if count == self.limit:
            log.warning("blocking authentication from %s for %ds after %d failures", address, _seconds(ttl), count)
        return _seconds(ttl) if count > self.limit else None


def _seconds(ttl_ms: int) -> int:
    return max(1, math.ceil(int(ttl_ms) / 1000))


def throttle(request: Request) -> AuthThrottle:
    """The app's AuthThrottle (made in the lifespan, on the app's asyncio Redis client)."""
    found: AuthThrottle = request.app.state.throttle
    return found
