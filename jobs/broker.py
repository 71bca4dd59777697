"""Dramatiq on Redis, with one addition: enqueueing as part of another atomic write.

A run record and its message must land together ("accepted" means both are durable), so
``RunBroker.enqueue_in`` adds the writes of Dramatiq's own "enqueue" to the script that also writes
the run record (``jobs.store``). The message layout is exactly what ``RedisBroker.enqueue`` writes;
its arguments are the run id, the fencing token and, when small, the record itself.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
import redis
import redis.asyncio
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis, dq_name
from dramatiq.middleware import CurrentMessage
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .errors import ConfigError
from .settings import Settings

log = logging.getLogger("backburner.worker")

QUEUE = "runs"
ACTOR = "execute_run"
#: Run records up to this size travel in their message (see ``RunBroker.prepare``).
SNAPSHOT_LIMIT = 64 * 1024
#: How long a free worker thread waits for the busy ones, so that one fetch refills them all: long enough
#: for a burst of short attempts to finish together, short against any real background function.
FETCH_LINGER_S = 0.02


def new_message_id() -> str:
    """A Redis message id in Dramatiq's format, made before the message so a run record can name it."""
    return f"{random.getrandbits(128):032x}"


def _url(settings: Settings) -> str:
    if not settings.redis_url:
        raise ConfigError(
            "REDIS_URL is not set: point it at your Redis (redis://host:6379/0), or use `backburner dev`."
        )
    return settings.redis_url


def _options() -> dict[str, Any]:
    """Client options shared by the sync and asyncio clients.

    Explicit timeouts, and two quick retries of a command whose connection failed (a pooled connection
    left stale by a Redis restart). Timeouts are not retried. A retried script call could enqueue a
    message twice; that is harmless, because a message whose fencing token is no longer current is
    skipped by the worker.
    """
    return {
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
        "max_connections": 256,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        "retry_on_error": [redis.ConnectionError],
    }


def connect(settings: Settings, url: str | None = None) -> redis.Redis:
    return redis.Redis.from_url(url or _url(settings), **_options())


def connect_async(settings: Settings) -> redis.asyncio.Redis:
    """The asyncio twin of ``connect``, for the API's hot path."""
    options = _options()
    options["retry"] = AsyncRetry(ExponentialBackoff(cap=0.5, base=0.05), 2)
    return redis.asyncio.Redis.from_url(_url(settings), **options)


class _BusyAwareConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, refilling its worker's threads together.

    With prefetch equal to the thread count (so no message waits in a busy worker's memory while
    other workers idle), the stock consumer fetches as soon as one thread is free, and treats "cannot
    fetch, all threads busy" like an empty queue: it sleeps 10-100 ms before it even records the
    finished messages. Here it waits for threads to finish instead (an event, not a sleep), and a free
    thread waits up to ``linger_s`` for the busy ones: threads that finish close together are refilled
    by one fetch and one claim round trip, not one each. A fetch and its claim cost the worker about
    the same whatever their size: on a busy worker, batches of the whole prefetch instead of about
    half of it cut the worker's CPU per run by about a sixth (``bench/spine.py runs``).
    """

    linger_s = FETCH_LINGER_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._freed = threading.Event()
        self._free_since: float | None = None

    def __next__(self) -> Any:
        self._freed.clear()  # before the checks: a thread finishing after them wakes the waits below
        if self.message_cache:
            return super().__next__()
        free = self.prefetch - self.outstanding_message_count
        if free <= 0:
            self._free_since = None
            self._freed.wait(self.timeout / 1000)
            return None
        if free < self.prefetch and self.queue_name == QUEUE:
            now = time.monotonic()
            if self._free_since is None:
                self._free_since = now
            if now - self._free_since < self.linger_s:
                self._freed.wait(self.linger_s - (now - self._free_since))
                return None
        self._free_since = None
        return super().__next__()

    def requeue(self, messages: Any) -> None:
        """Hand back messages this process fetched but will not run (it is stopping)."""
        messages = list(messages)
        if messages and self.queue_name == QUEUE and self.broker.returned is not None:
            self.broker.returned(messages)
        super().requeue(messages)

    def close(self) -> None:
        """Hand back fetched messages that were never given to a thread, so their runs do not wait for the
        reaper (they may already be claimed; see ``RunBroker.fetched``)."""
        leftover, self.message_cache = self.message_cache, []
        try:
            self.requeue(dramatiq.Message.decode(data) for data in leftover if data is not None)
        except redis.RedisError as exc:
            # Left in this worker's ack set: Dramatiq puts them back once its heartbeat stops, and the
            # reaper resumes a claimed run that overstays its time limit.
            log.warning("could not hand back %d message(s): %s", len(leftover), exc)

    def ack(self, message: Any) -> None:
        """Skip the round trip when the worker already acked the message in the step that recorded the run."""
        try:
            if getattr(message, "acked_with_run", False):
                self.queued_message_ids.discard(message.message_id)
            else:
                super().ack(message)
        finally:
            self._freed.set()

    def nack(self, message: Any) -> None:
        try:
            super().nack(message)
        finally:
            self._freed.set()


class RunBroker(RedisBroker):
    """A RedisBroker that can also enqueue as part of a caller's transaction.

    A worker process can watch its messages through two hooks: ``fetched`` sees each batch fetched
    from the runs queue (raw bodies) before any of them is handed to a thread, and ``returned`` sees
    the messages handed back unrun when the worker stops. The worker claims a batch's runs in one
    round trip on fetch, and releases the claims of returned messages.
    """

    fetched: Callable[[list[bytes]], None] | None = None
    returned: Callable[[list[Any]], None] | None = None

    def do_fetch(self, queue_name: str, prefetch: int) -> list[bytes]:
        data: list[bytes] = self._dispatch("fetch")(queue_name, prefetch)
        if data and queue_name == QUEUE and self.fetched is not None:
            self.fetched(data)
        return data

    @property
    def consumer_class(self) -> Any:
        return _BusyAwareConsumer

    def prepare(
        self,
        run_id: str,
        token: str,
        *,
        snapshot: str | None = None,
        message_id: str | None = None,
        delay_s: float | None = None,
    ) -> tuple[str, str, bytes]:
        """``(queue name, Redis message id, encoded message)`` exactly as ``RedisBroker.enqueue`` writes them.

        ``snapshot`` is the run record as written together with the message: the worker claims the run
        with a compare-and-set against it, so a fresh message costs no read. Large records are left out
        (the worker reads those), to keep messages small.
        """
        args: tuple[str, ...] = (run_id, token)
        if snapshot is not None and len(snapshot) <= SNAPSHOT_LIMIT:
            args = (run_id, token, snapshot)
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=QUEUE,
            actor_name=ACTOR,
            args=args,
            kwargs={},
            options={"redis_message_id": message_id or new_message_id()},
        )
        delay_ms = None if delay_s is None else max(0, int(delay_s * 1000))
        if delay_ms:
            message = message.copy(queue_name=dq_name(QUEUE), options={"eta": current_millis() + delay_ms})
        self.emit_before("enqueue", message, delay_ms)
        return message.queue_name, str(message.options["redis_message_id"]), message.encode()

    def ack_in(self, pipe: Any, message: Any) -> None:
        """Ack ``message`` (fetched by this broker's consumer) on ``pipe``, with the caller's other writes.

        The same writes as dispatch.lua's "ack": SREM from this consumer's acks set, HDEL the body.
        The worker marks the message so the consumer skips its own ack: one round trip less per run.
        """
        message_id = message.options["redis_message_id"]
        pipe.srem(f"{self.namespace}:__acks__.{self.broker_id}.{QUEUE}", message_id)
        pipe.hdel(self.queue_keys(QUEUE)[1], message_id)

    def queue_keys(self, queue_name: str = QUEUE) -> tuple[str, str]:
        """The list and hash Dramatiq keeps a queue in (dispatch.lua: ``ns:q`` and ``ns:q.msgs``)."""
        return f"{self.namespace}:{queue_name}", f"{self.namespace}:{queue_name}.msgs"

    def enqueue_in(
        self,
        pipe: Any,
        run_id: str,
        token: str,
        *,
        snapshot: str | None = None,
        message_id: str | None = None,
        delay_s: float | None = None,
    ) -> str:
        """Queue the message for ``(run_id, token)`` on ``pipe``, to be applied with the caller's other writes.

        The writes are exactly dispatch.lua's "enqueue" (HSET ns:q.msgs id data; RPUSH ns:q id), so a
        Dramatiq consumer cannot tell the difference. Returns the message's Redis id, so the run can
        tell later whether its message still exists.
        """
        queue_name, message_id, encoded = self.prepare(
            run_id, token, snapshot=snapshot, message_id=message_id, delay_s=delay_s
        )
        queue, messages = self.queue_keys(queue_name)
        pipe.hset(messages, message_id, encoded)
        pipe.rpush(queue, message_id)
        return message_id


def build_broker(settings: Settings, client: redis.Redis) -> RunBroker:
    """The broker every process uses.

    Dramatiq's own Retries and TimeLimit middleware are left out: retries are exact and recorded
    on the run, and limits are enforced by killing the child process. Dead-worker maintenance is
    made frequent and quick so messages fetched by a killed worker come back within seconds.
    """
    broker = RunBroker(
        client=client,
        namespace=settings.namespace,
        middleware=[CurrentMessage()],
        heartbeat_timeout=int(settings.worker_timeout * 1000),
        maintenance_chance=10_000,  # 1% of fetches; the reaper covers running and retrying runs itself
    )
    broker.declare_queue(QUEUE)
    return broker


def wait_for_redis(client: redis.Redis, stop: threading.Event, log: logging.Logger) -> bool:
    """Block until Redis answers (a process may start before its Redis); False if ``stop`` was set first."""
    delay = 0.5
    while not stop.is_set():
        try:
            client.ping()
            return True
        except redis.RedisError as exc:
            where = client.connection_pool.connection_kwargs
            log.warning("Redis at %s:%s does not answer (%s); retrying", where.get("host"), where.get("port"), exc)
            stop.wait(delay)
            delay = min(delay * 2, 10.0)
    return False
