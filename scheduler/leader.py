"""The leader lease: one Redis key that names the scheduler allowed to fire.

``SET key me NX PX ttl`` takes a free lease; the holder extends it with a compare-and-set script
(extend only if the value is still its own), and releases it the same way on a clean exit, so a
restart hands over at once. A holder that dies stops renewing; the key expires after ``ttl`` and
the next scheduler to try (every ``ttl / 3``) takes it. The holder also stops trusting its lease
locally before the key can have expired, so two leaders overlap only if clocks or pauses go badly
wrong, and then the per-tick idempotency key still prevents a second run.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

import redis

from jobs.broker import Outage
from jobs.scripts import lua

log = logging.getLogger("backburner.scheduler")

#: The share of the TTL the holder trusts its lease for, measured from before the request was sent.
TRUST = 0.8


def holder_id() -> str:
    """``host:pid:random``: unique per process, and readable in ``redis-cli GET``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease:
    """A renewable lease on ``key``; ``refresh()`` every ``ttl / 3``, ``held()`` before firing."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        ttl_s: float,
        *,
        holder: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.holder = holder or holder_id()
        self._monotonic = monotonic
        self._renew = client.register_script(lua("renew_lease", "scheduler"))
        self._release = client.register_script(lua("release_lease", "scheduler"))
        self._lock = threading.Lock()
        self._valid_until = 0.0
        self._said_leading = False  # what the log last said
        self._outage = Outage(log, "scheduler lease")

    @property
    def renew_interval_s(self) -> float:
        return self.ttl_ms / 3000

    def held(self) -> bool:
        """True while this process may fire: the lease was confirmed recently enough."""
        with self._lock:
            return self._monotonic() < self._valid_until

    def refresh(self) -> bool:
        """Extend our lease, or take a free one; returns whether we hold it now."""
        sent = self._monotonic()
        try:
            ok = bool(self._renew(keys=[self.key], args=[self.holder, self.ttl_ms])) or bool(
                self.client.set(self.key, self.holder, nx=True, px=self.ttl_ms)
            )
        except redis.RedisError as error:
            # Keep the current trust window: it ends before the key can expire in Redis.
            self._outage.failed(error, "firing stops if it lasts")
            return self.held()
        self._outage.answered()
        with self._lock:
            self._valid_until = sent + self.ttl_ms / 1000 * TRUST if ok else 0.0
        if ok != self._said_leading:  # said on each change, not on each trust window that lapsed meanwhile
            if ok:
                log.info("scheduler %s is now the leader", self.holder)
            else:
                log.warning("scheduler %s lost the lead", self.holder)
            self._said_leading = ok
        return ok

    def release(self) -> None:
        """Give the lease up at once (clean shutdown), so another scheduler need not wait for the TTL."""
        with self._lock:
            self._valid_until = 0.0
        self._said_leading = False
        try:
            self._release(keys=[self.key], args=[self.holder])
        except redis.RedisError as error:
            log.warning("scheduler lease: could not release (%s); it expires by itself", error)
