"""RunBroker and its consumer: every place Backburner relies on Dramatiq below its public API.

A run record and its message must land together ("accepted" means both are durable), so Backburner writes
Dramatiq's messages itself, inside the scripts that write run records, and it steers how a worker fetches.
Dramatiq publishes neither, so this module leans on its private internals; nothing else in the project may.
Each assumption is checked by ``tests/jobs/test_dramatiq_internals.py``, which names the one that broke.
The Dramatiq versions they were checked against are pinned in ``pyproject.toml``.

A. Redis layout (``dramatiq/brokers/redis/dispatch.lua``): queue ``q`` is a list ``<ns>:q`` of message ids
   and a hash ``<ns>:q.msgs`` of id -> encoded message; "enqueue" is ``HSET`` then ``RPUSH``; a fetch takes
   ids from the list's head and reads their bodies, and ignores bodies whose id is not on the list.
   (Dramatiq's delay queue, ``dq_name(q)``, is no longer written: a delayed message's body waits in the
   hash and its id in Backburner's own sorted set until its time; see ``RunBroker.enqueue_in``. A
   worker still consumes that delay queue, for messages written by an older version.)
B. A message's Redis id is its ``redis_message_id`` option, not its ``message_id``.
C. A fetched id waits in the set ``<ns>:__acks__.<broker_id>.<q>``; "ack" is ``SREM`` from it, then ``HDEL``
   of the body.
D. ``Message.encode()`` writes JSON in which string fields appear verbatim (the wake-up message that
   ``compare_and_set.lua`` fills in is made from it).
E. ``RedisBroker.consumer_class`` builds the consumer; ``_RedisConsumer`` keeps ``message_cache``,
   ``queued_message_ids``, ``prefetch``, ``timeout`` and ``outstanding_message_count``, and fetches with
   ``broker.do_fetch(queue, count)``; ``RedisBroker._dispatch("fetch")`` runs dispatch.lua's "fetch";
   ``_RedisConsumer.__next__`` pops ``message_cache`` first and fetches only when it is empty.
F. ``dramatiq.Worker`` reads ``queue_prefetch`` when it starts its consumers.
G. ``dramatiq.Worker.work_queue`` is the queue.PriorityQueue its threads take messages from, holding items
   whose ``message`` is the MessageProxy the consumer yielded; a thread calls ``task_done()`` per item.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from functools import cached_property
from typing import Any, cast

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import CurrentMessage

from ..scripts import PROMOTE_LATER_SCRIPT
from ..settings import Settings
from .nudges import Nudges

log = logging.getLogger("backburner.worker")

QUEUE = "runs"
ACTOR = "execute_run"
#: Run records up to this size travel in their message (see ``RunBroker.prepare``).
SNAPSHOT_LIMIT = 64 * 1024
#: How long a free worker thread waits for the busy ones, so that one fetch refills them all: long enough
#: for a burst of short attempts to finish together, short against any real background function.
FETCH_LINGER_S = 0.02
#: An idle consumer looks at the queue this often even when no nudge comes (the safety net: a nudge lost with
#: a broken connection, or a message put back by Dramatiq's own maintenance or requeue).
IDLE_POLL_S = 1.0
#: The longest an idle consumer blocks in one wait, so that a stopping worker's consumer notices soon.
_IDLE_SLICE_S = 0.25
#: A run fetched ahead of a free thread (see ``RunBroker.ahead``) goes back to the queue when it has waited
#: this long (or a quarter of the worker timeout, if less): it was fetched for attempts expected to end at
#: once, and if they did not, another worker may be free to start it.
HOLD_LIMIT_S = 1.0
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

    Beyond the free threads, it fetches one run ahead for each busy thread whose attempt the worker
    expects to end at once (``RunBroker.ahead``): a thread freed by such an attempt finds its next run
    waiting instead of waiting for a fetch, which raised the 2 x 8 drain by about a sixth. A run fetched
    ahead that still waits after ``HOLD_LIMIT_S`` is handed back to the queue for any worker.
    """

    linger_s = FETCH_LINGER_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._freed = threading.Event()
        #: What the consumer waits for: "any" thread to be free, "all" of them (lingering), or nothing.
        self._waiting_for = ""
        self._free_since: float | None = None
        self._low = 0  # while lingering: how few outstanding messages are worth waking for
        self._fetched_at = 0.0  # when the messages in ``message_cache`` were fetched
        self._poll_at = 0.0  # when an idle look at the queue is due without a nudge
        self._nudges: Nudges | None = None
        if self.queue_name == QUEUE:
            self._nudges = Nudges(self.broker.client, self.broker.nudge_channel).open()

    def __next__(self) -> Any:
        self._freed.clear()  # before the checks: a thread finishing after them wakes the waits below
        if self.message_cache:
            return self._next_cached()
        self._waiting_for = "any"  # before counting: a thread freed after the count wakes the wait below
        ahead = min(self._ahead(), self.outstanding_message_count)  # only for threads that are busy
        free = self.prefetch + ahead - self.outstanding_message_count
        if free <= 0:
            self._free_since = None
            self._freed.wait(self.timeout / 1000)
            self._waiting_for = ""
            self._hand_back_held()
            return None
        if free < self.prefetch and self.queue_name == QUEUE:
            now = time.monotonic()
            if self._free_since is None:
                self._free_since = now
            if now - self._free_since < self.linger_s:
                self._low = ahead
                self._waiting_for = "all"  # only the end that frees a whole batch's room is worth waking for
                if self.outstanding_message_count > ahead:
                    self._freed.wait(self.linger_s - (now - self._free_since))
                self._waiting_for = ""
                self._hand_back_held()
                return None
        self._waiting_for = ""
        self._free_since = None
        now = time.monotonic()
        if now < self._poll_at:  # idle: wait for a nudge (or the next poll), a slice at a time
            slice_s = min(_IDLE_SLICE_S, self._poll_at - now)
            nudged = self._nudges.wait(slice_s) if self._nudges is not None else self._freed.wait(slice_s)
            if not nudged:
                return None
        try:
            self.message_cache = self.broker.do_fetch(self.queue_name, free)
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None
        if not self.message_cache:  # an empty queue: wait for its nudge, polling only as a safety net
            self._poll_at = time.monotonic() + IDLE_POLL_S
            return None
        self._poll_at = 0.0
        self._fetched_at = time.monotonic()
        return self._next_cached()

    def _next_cached(self) -> Any:
        """Dramatiq's fast path, for messages ``RunBroker.do_fetch`` decoded already (E): once per message."""
        message = self.message_cache.pop(0)
        if message is None:  # its body was gone; its id stays in the ack set for Dramatiq's maintenance
            log.warning("a fetched message of queue %r had no body", self.queue_name)
            return None
        self.misses = 0
        self.queued_message_ids.add(message.message_id)
        proxy = MessageProxy(message)
        proxy.fetched_at = self._fetched_at  # type: ignore[attr-defined]  # read by _hand_back_held
        return proxy

    def _ahead(self) -> int:
        """How many of the worker's threads are free or about to be (``RunBroker.ahead``), at most all of them."""
        hook = self.broker.ahead if self.queue_name == QUEUE else None
        if hook is None:
            return 0
        try:
            return max(0, min(self.prefetch, int(hook())))
        except Exception:  # fetching ahead is an optimisation: never let it stop the consumer
            log.exception("RunBroker.ahead failed; fetching for free threads only")
            return 0

    def _hand_back_held(self) -> None:
        """Hand back the runs fetched ahead that waited for a thread longer than ``HOLD_LIMIT_S`` (G)."""
        work = self.broker.work_queue
        if work is None or self.queue_name != QUEUE or not work.qsize():
            return
        limit = min(HOLD_LIMIT_S, self.broker.heartbeat_timeout / 4000)
        now = time.monotonic()
        if all(now - getattr(item.message, "fetched_at", now) < limit for item in list(work.queue)):
            return
        held: list[Any] = []
        others: list[Any] = []
        while True:
            try:
                item = work.get_nowait()
            except queue.Empty:
                break
            work.task_done()
            mine = item.message.queue_name == QUEUE and item.message.message_id in self.queued_message_ids
            (held if mine else others).append(item)
        for item in others:
            work.put(item)
        if not held:
            return
        messages = [item.message for item in held]
        try:
            self.requeue(messages)
        except redis.RedisError as exc:  # they run here after all, once a thread is free
            log.warning("could not hand back %d waiting message(s): %s", len(held), exc)
            for item in held:
                work.put(item)
            return
        for message in messages:
            self.queued_message_ids.discard(message.message_id)
        log.info("handed back %d run(s) that waited %.1fs for a busy thread", len(held), limit)

    def requeue(self, messages: Any) -> None:
        """Hand back messages this process fetched but will not run (it is stopping)."""
        messages = list(messages)
        if messages and self.queue_name == QUEUE and self.broker.returned is not None:
            self.broker.returned(messages)
        super().requeue(messages)

    def close(self) -> None:
        """Hand back fetched messages that were never given to a thread, so their runs do not wait for the
        reaper (they may already be claimed; see ``RunBroker.fetched``)."""
        if self._nudges is not None:
            self._nudges.close()
        leftover, self.message_cache = self.message_cache, []
        try:
            self.requeue(message for message in leftover if message is not None)
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
            self._wake()

    def nack(self, message: Any) -> None:
        try:
            super().nack(message)
        finally:
            self._wake()

    def _wake(self) -> None:
        """A thread is free: wake the consumer if that is what it waits for (a wake-up is a thread switch)."""
        waiting = self._waiting_for
        if waiting == "any" or (waiting == "all" and self.outstanding_message_count <= self._low):
            self._freed.set()


class RunBroker(RedisBroker):
    """A RedisBroker that can also enqueue and ack as part of a caller's atomic write.

    A worker process can watch its messages through two hooks: ``fetched`` sees each batch fetched
    from the runs queue (raw bodies) before any of them is handed to a thread, and ``returned`` sees
    the messages handed back unrun (the worker stops, or they waited too long for a thread). The worker
    claims a batch's runs in one round trip on fetch, and releases the claims of returned messages.
    A third, ``ahead``, says how many runs it may fetch beyond its free threads.
    """

    fetched: Callable[[list[Any]], None] | None = None
    returned: Callable[[list[Any]], None] | None = None
    #: How many of the worker's threads are free or expected to be free at once: the consumer fetches one run
    #: ahead (beyond the free threads) for each busy one among them. None: no run is fetched ahead.
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

    def later_head(self) -> int | None:
        """When the next delayed message is due (ms), if there is one."""
        head = self.client.zrange(self.queue_keys(delayed=True)[0], 0, 0, withscores=True)
        return int(head[0][1]) if head else None

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
