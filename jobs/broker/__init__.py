"""Dramatiq on Redis: the broker every process builds, plus enqueueing and acking inside another atomic write.

    connection.py          Redis clients (sync and asyncio) with explicit timeouts and retries; waiting for Redis;
                           saying once per outage that it is away (Outage)
    durability.py          whether Redis's persistence and eviction settings keep accepted runs (said at start-up)
    dramatiq_internals/    RunBroker and its consumer: every reliance on Dramatiq's private internals, listed
                           in its __init__ and checked by tests/jobs/test_dramatiq_internals.py

Code elsewhere uses Dramatiq's public API only (actors, ``Message.decode``, ``CurrentMessage``) and asks
``RunBroker`` for anything about the Redis layout. The supported Dramatiq versions are pinned in
pyproject.toml: before widening the range, run those tests against the new version.
"""

from .connection import Outage, address, connect, connect_async, connect_quick, wait_for_redis
from .dramatiq_internals import (
    ACTOR,
    AHEAD_LIMIT,
    QUEUE,
    SNAPSHOT_LIMIT,
    RunBroker,
    build_broker,
    build_worker,
    new_message_id,
    redis_message_id,
)
from .durability import warn_of_risks

__all__ = [
    "ACTOR",
    "AHEAD_LIMIT",
    "QUEUE",
    "SNAPSHOT_LIMIT",
    "RunBroker",
    "build_broker",
    "build_worker",
    "connect",
    "connect_async",
    "connect_quick",
    "new_message_id",
    "redis_message_id",
    "wait_for_redis",
    "warn_of_risks",
    "Outage",
    "address",
]
