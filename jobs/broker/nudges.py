"""Wake-ups instead of polling: a pub/sub channel that the scripts writing messages publish to.

An idle consumer would otherwise find a new run only at its next poll (Dramatiq's consumer backs off to
its idle timeout), and a retry only at the delay queue's next look. Instead, the script that makes the
runs queue stop being empty publishes an empty message on the queue's channel, in the same atomic step
as the write, and every idle consumer, subscribed for as long as it lives, wakes within a millisecond.
Delayed messages and delayed runs nudge the workers' timers (``jobs.worker.timer``) the same way.

Pub/sub loses what is published while no one listens, and a subscription can break with its connection;
so waits are bounded and polling stays as the safety net. A subscription is made before the first look
at the queue and kept, so a nudge published between a look and the next wait is still in the socket.
"""

from __future__ import annotations

import contextlib
import logging
import time

import redis
from redis.client import PubSub

log = logging.getLogger("backburner.worker")


class Nudges:
    """One subscription, read by one thread: ``wait`` returns True when nudged, False at the timeout."""

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self.client = client
        self.channel = channel
        self._pubsub: PubSub | None = None

    def _subscribed(self) -> PubSub:
        if self._pubsub is None:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(self.channel)
            self._pubsub = pubsub
        return self._pubsub

    def open(self) -> Nudges:
        """Subscribe now (before the first look at what the channel announces)."""
        try:
            self._subscribed()
        except redis.RedisError as exc:  # the waits sleep instead, and subscribe again later
            log.warning("could not subscribe to %s (%s); polling instead", self.channel, exc)
        return self

    def wait(self, timeout_s: float) -> bool:
        """Block until a nudge arrives or ``timeout_s`` passes; every nudge already there is taken with it."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        try:
            pubsub = self._subscribed()
            nudged = False
            while True:
                remaining = 0.0 if nudged else deadline - time.monotonic()
                if pubsub.get_message(timeout=max(0.0, remaining)) is not None:
                    nudged = True  # and take the others already there
                elif nudged or remaining <= 0:
                    return nudged
                # else a subscribe confirmation or a health check's answer was read: wait on
        except (redis.RedisError, OSError) as exc:
            self.close()
            log.debug("nudges on %s unavailable (%s); polling", self.channel, exc)
            time.sleep(max(0.0, deadline - time.monotonic()))
            return False

    def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                pubsub.close()
