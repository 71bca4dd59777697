"""RunBroker: Dramatiq's RedisBroker writing and acking messages inside Backburner's own atomic writes (A-D)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from functools import cached_property
from typing import Any, cast

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis
from dramatiq.middleware import CurrentMessage

from ...scripts import PROMOTE_LATER_SCRIPT
from ...settings import Settings
from .consumer import QUEUE, Held, _BusyAwareConsumer

log = logging.getLogger("backburner.worker")

ACTOR = "execute_run"
#: Run records up to this size travel in their message (see ``RunBroker.prepare``).
SNAPSHOT_LIMIT = 64 * 1024
#: Delayed messages queued per call of ``promote_later.lua``.
PROMOTE_BATCH = 500
#: The fields of the wake-up message that ``compare_and_set.lua`` fills in (D).
WAKE_FIELDS = ("run", "token", "id", "now")


def new_message_id() -> str:
    """A Redis message id in Dramatiq's format, made before the message so a run record can name it."""
    return f"{random.getrandbits(128):032x}"


def redis_message_id(message: Any) -> str:
    """The id under which ``message`` (a Message or MessageProxy) is stored in Redis (B)."""
    return str(message.options["redis_message_id"])


def _decode(body: bytes | None) -> Any:
    if body is None:
        return None
    try:
        return dramatiq.Message.decode(body)
    except Exception as exc:  # a malformed body must not stop the consumer; it stays for Dramatiq's maintenance
        log.warning("a fetched message could not be read (%s): %.200r", exc, body)
        return None


class RunBroker(RedisBroker):
    """A RedisBroker that can also enqueue and ack as part of a caller's atomic write.

    A worker process can watch its messages through two hooks: ``fetched`` sees each batch fetched
    from the runs queue (decoded) before any of them is handed to a thread, and ``returned`` sees
    the messages handed back unrun (the worker stops, or they waited too long for a thread). The worker
    claims a batch's runs in one round trip on fetch, and releases the claims of returned messages.
    A third, ``ahead``, says how many runs the consumer may fetch ahead for its busy threads.
    """

    fetched: Callable[[list[Any]], None] | None = None
    returned: Callable[[list[Any]], None] | None = None
    #: How many runs to fetch ahead (beyond the free threads) for the worker's busy threads that are expected
    #: to be free at once, at most ``AHEAD_LIMIT`` for each. None: none ahead.
    ahead: Callable[[], int] | None = None
    #: The worker's work queue (G), where fetched messages wait for a thread; runs fetched ahead that wait
    #: too long are handed back from it.
    work_queue: Any = None

    def do_fetch(self, queue_name: str, prefetch: int) -> list[Any]:
        """Fetch and decode up to ``prefetch`` messages (None for a body that is gone or unreadable): decoded
        once here, for the ``fetched`` hook and the consumer alike."""
        data: list[bytes | None] = self._dispatch("fetch")(queue_name, prefetch)  # E
        messages = [_decode(body) for body in data]
        if messages and queue_name == QUEUE and self.fetched is not None:
            self.fetched(messages)
        return messages

    @property
    def consumer_class(self) -> Any:
        return _BusyAwareConsumer  # E

    @cached_property
    def held(self) -> Held:
        """What this process holds of the runs queue, checked against its ack set by its consumer (``Held``)."""
        return Held()

    def queue_keys(self, *, delayed: bool = False) -> tuple[str, str]:
        """The runs queue's id list and message hash (A); ``delayed``: the sorted set of delayed messages'
        ids by due time (ms), and the same hash, where their bodies wait."""
        messages = f"{self.namespace}:{QUEUE}.msgs"
        return (f"{self.namespace}:{QUEUE}.later" if delayed else f"{self.namespace}:{QUEUE}", messages)

    @property
    def nudge_channel(self) -> str:
        """Published when the runs queue stops being empty: idle consumers wait on it (``jobs.broker.nudges``)."""
        return f"{self.namespace}:{QUEUE}.nudge"

    @property
    def later_channel(self) -> str:
        """Published when a delayed message or a delayed run is written: the workers' timers look again."""
        return f"{self.namespace}:{QUEUE}.later.nudge"

    def promote_later(self, now_ms: int) -> tuple[int, int | None]:
        """Queue the delayed messages due by ``now_ms`` (one atomic script call; at most ``PROMOTE_BATCH``):
        how many were queued, and when the next one is due (ms), if any."""
        later, messages = self.queue_keys(delayed=True)
        keys, args = [later, self.queue_keys()[0], messages], [now_ms, PROMOTE_BATCH, self.nudge_channel]
        moved, head = self._promote_script(keys=keys, args=args)
        return int(moved), (int(float(head)) if head else None)

    @cached_property
    def _promote_script(self) -> Any:
        return self.client.register_script(PROMOTE_LATER_SCRIPT)

    def acks_key(self, broker_id: str | None = None) -> str:
        """The set of runs-queue messages this process (or broker ``broker_id``; ``"*"`` makes a pattern for
        ``SCAN``) fetched and has not acked yet (C)."""
        return f"{self.namespace}:__acks__.{broker_id or self.broker_id}.{QUEUE}"

    def prepare(
        self,
        run_id: str,
        token: str,
        *,
        snapshot: str | None = None,
        message_id: str | None = None,
    ) -> tuple[str, str, str, bytes]:
        """``(queue list, message hash, Redis message id, encoded message)``, as ``RedisBroker.enqueue``
        would write them (A, B).

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
        self.emit_before("enqueue", message, None)
        queue, messages = self.queue_keys()
        return queue, messages, redis_message_id(message), message.encode()

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

        The writes are exactly dispatch.lua's "enqueue" (A), so a Dramatiq consumer cannot tell the
        difference. With ``delay_s``, the body is written now and its id waits in the delayed set, scored
        by its due time, until a worker's timer queues it (``promote_later``) and the workers' timers are
        nudged. Returns the message's Redis id, so the run can tell later whether its message still exists.
        """
        queue, messages, message_id, encoded = self.prepare(run_id, token, snapshot=snapshot, message_id=message_id)
        delay_ms = None if delay_s is None else max(0, int(delay_s * 1000))
        pipe.hset(messages, message_id, encoded)
        if delay_ms:
            pipe.zadd(self.queue_keys(delayed=True)[0], {message_id: current_millis() + delay_ms})
            pipe.publish(self.later_channel, "")
        else:
            pipe.rpush(queue, message_id)
        return message_id

    def ack_in(self, pipe: Any, message: Any) -> None:
        """Ack ``message`` (fetched by this broker's consumer) on ``pipe``, with the caller's other writes.

        The same writes as dispatch.lua's "ack" (C). The worker marks the message so the consumer skips
        its own ack: one round trip less per run.
        """
        message_id = redis_message_id(message)
        pipe.srem(self.acks_key(), message_id)
        pipe.hdel(self.queue_keys()[1], message_id)

    @cached_property
    def wake_message(self) -> bytes:
        """The encoded message that wakes a run waiting for a concurrency slot, with ``@run@``, ``@token@``,
        ``@id@`` (its Redis id) and ``@now@`` (ms) left for ``compare_and_set.lua`` to fill in (D)."""
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=QUEUE,
            actor_name=ACTOR,
            args=("@run@", "@token@"),
            kwargs={},
            options={"redis_message_id": "@id@"},
            message_id="@id@",
            message_timestamp=cast(int, "@now@"),
        )
        encoded = message.encode().replace(b'"@now@"', b"@now@")  # a number once filled in
        if any(f"@{field}@".encode() not in encoded for field in WAKE_FIELDS):
            raise RuntimeError(
                f"Dramatiq's message encoding changed (assumption D in {__name__}): {encoded!r} does not hold "
                "the wake-up message's fields verbatim; this Dramatiq version is not supported."
            )
        return encoded


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
    broker.wake_message  # noqa: B018  made now: an unsupported Dramatiq fails at start-up, not on a run (D)
    return broker


def build_worker(broker: RunBroker, threads: int, poll_ms: int) -> dramatiq.Worker:
    """A Dramatiq worker that fetches for its free threads (F), and beyond them only for threads about to be
    free (``RunBroker.ahead``), so no message waits long in a busy worker's memory while other workers idle."""
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=poll_ms)
    worker.queue_prefetch = threads
    broker.work_queue = worker.work_queue  # G
    return worker
