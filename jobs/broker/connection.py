"""Redis clients, made one way for every process: explicit timeouts, quick retries of a stale connection."""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from ..errors import ConfigError
from ..settings import Settings


def _url(settings: Settings) -> str:
    if not settings.redis_url:
        raise ConfigError(
            "REDIS_URL is not set: point it at your Redis (redis://host:6379/0), or use `backburner dev`."
        )
    return settings.redis_url


def _options() -> dict[str, Any]:
    """Client options shared by the sync and asyncio clients.

    Explicit timeouts, and two quick retries of a command whose connection failed (a pooled connection
    left stale by a Redis restart). Timeouts are not retried (redis-py's ``Retry`` would, by default: a hung
    Redis would hold every call three times 10 s). A retried script call could enqueue a message twice;
    that is harmless, because a message whose fencing token is no longer current is skipped by the worker.
    """
    return {
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
        "max_connections": 256,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 2, supported_errors=(redis.ConnectionError,)),
        "retry_on_error": [redis.ConnectionError],
    }


def connect(settings: Settings, url: str | None = None) -> redis.Redis:
    return redis.Redis.from_url(url or _url(settings), **_options())


def connect_quick(settings: Settings, timeout_s: float = 1.0) -> redis.Redis:
    """A client that gives up after ``timeout_s``, for reads that must not hold up a deadline (the watch over a
    running attempt: a Redis that hangs must not stretch the attempt's time limit by the usual 10 s)."""
    quick = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "health_check_interval": 0,
        "retry": Retry(NoBackoff(), 0),
    }
    return redis.Redis.from_url(_url(settings), **{**_options(), **quick})  # no retries: they nest on connect


def connect_async(settings: Settings) -> redis.asyncio.Redis:
    """The asyncio twin of ``connect``, for the API's hot path."""
    options = _options()
    options["retry"] = AsyncRetry(ExponentialBackoff(cap=0.5, base=0.05), 2, supported_errors=(redis.ConnectionError,))
    return redis.asyncio.Redis.from_url(_url(settings), **options)


def address(client: redis.Redis | redis.asyncio.Redis) -> str:
    """Where ``client`` connects, ``host:port``, for messages (never the URL: it may hold the password)."""
    kwargs = client.connection_pool.connection_kwargs
    return f"{kwargs.get('host')}:{kwargs.get('port')}"


def wait_for_redis(client: redis.Redis, stop: threading.Event, log: logging.Logger) -> bool:
    """Block until Redis answers (a process may start before its Redis); False if ``stop`` was set first."""
    delay = 0.5
    while not stop.is_set():
        try:
            client.ping()
            return True
        except redis.RedisError as exc:
            log.warning("Redis at %s does not answer (%s); retrying", address(client), exc)
            stop.wait(delay)
            delay = min(delay * 2, 10.0)
    return False


class Outage:
    """For a loop that polls Redis: says once that Redis went away (the loop retries quietly meanwhile) and once
    that it answers again, rather than a warning every poll for as long as the outage lasts."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self.down = False

    def failed(self, exc: Exception, then: str = "retrying") -> None:
        if not self.down:
            self.log.warning("%s: Redis unavailable (%s); %s", self.what, exc, then)
        self.down = True

    def answered(self) -> None:
        if self.down:
            self.log.info("%s: Redis answers again", self.what)
        self.down = False
