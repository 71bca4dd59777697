"""Dramatiq on Redis, with one addition: enqueueing inside a Redis transaction.

A run record and its message must land together ("accepted" means both are durable), so
``RunBroker.enqueue_in`` queues Dramatiq's own dispatch script on a MULTI/EXEC pipeline that
also carries the run record. The message layout is exactly what ``RedisBroker.enqueue`` writes.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name

from .settings import Settings

QUEUE = "runs"
ACTOR = "execute_run"


def connect(settings: Settings, url: str | None = None) -> redis.Redis:
    """A Redis client with explicit timeouts and no automatic command retries.

    A blind retry of an EVALSHA after a read timeout could enqueue a message twice; our own
    fencing tokens make duplicates harmless, but we still prefer to surface the error (503).
    """
    target = url or settings.redis_url
    if not target:
        raise RuntimeError("No Redis URL: set REDIS_URL or start Backburner with `backburner dev`.")
    return redis.Redis.from_url(
        target,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
        max_connections=256,
    )


class RunBroker(RedisBroker):
    """A RedisBroker that can also enqueue as part of a caller's transaction."""

    def enqueue_in(self, pipe: Any, run_id: str, token: str, *, delay_s: float | None = None) -> str:
        """Queue the message for ``(run_id, token)`` on ``pipe`` (a MULTI pipeline); it lands on EXEC.

        Returns the message's Redis id, so the run can tell later whether its message still exists.
        """
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=QUEUE,
            actor_name=ACTOR,
            args=(run_id, token),
            kwargs={},
            options={"redis_message_id": str(uuid4())},
        )
        queue_name = QUEUE
        delay_ms = None if delay_s is None else max(0, int(delay_s * 1000))
        if delay_ms:
            queue_name = dq_name(QUEUE)
            message = message.copy(queue_name=queue_name, options={"eta": current_millis() + delay_ms})
        self.emit_before("enqueue", message, delay_ms)
        args = [
            "enqueue",
            current_millis(),
            queue_name,
            self.broker_id,
            self.heartbeat_timeout,
            self.dead_message_ttl,
            0,  # no maintenance inside a caller's transaction
            self._max_unpack_size(),
            message.options["redis_message_id"],
            message.encode(),
        ]
        self.scripts["dispatch"](keys=[self.namespace], args=args, client=pipe)
        return str(message.options["redis_message_id"])


def build_broker(settings: Settings, client: redis.Redis) -> RunBroker:
    """The broker every process uses.

    Dramatiq's own Retries and TimeLimit middleware are left out: retries are exact and recorded
    on the run, and limits are enforced by killing the child process. Dead-worker maintenance is
    made frequent and quick so messages fetched by a killed worker come back within seconds.
    """
    broker = RunBroker(
        client=client,
        namespace=settings.namespace,
        middleware=[],
        heartbeat_timeout=int(settings.worker_timeout * 1000),
        maintenance_chance=50_000,
    )
    broker.declare_queue(QUEUE)
    return broker
