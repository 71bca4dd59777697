"""The runs queue's consumer: Dramatiq's Redis consumer, refilling a worker's threads together (E, F, G)."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import _RedisConsumer
from dramatiq.errors import ConnectionClosed

from ...keys import text
from ..nudges import Nudges

log = logging.getLogger("backburner.worker")

#: The queue every run's messages go to.
QUEUE = "runs"
#: How long a free worker thread waits for the busy ones, so that one fetch refills them all: long enough
#: for a burst of short attempts to finish together, short against any real background function.
FETCH_LINGER_S = 0.02
#: An idle consumer looks at the queue this often even when no nudge comes (the safety net: a nudge lost with
#: a broken connection, or a message put back by Dramatiq's own maintenance or requeue).
IDLE_POLL_S = 1.0
#: The longest an idle consumer blocks in one wait, so that a stopping worker's consumer notices soon.
_IDLE_SLICE_S = 0.25
#: The most runs fetched ahead for one busy thread (``RunBroker.ahead`` says how many it wants).
AHEAD_LIMIT = 8
#: A run fetched ahead of a free thread (see ``RunBroker.ahead``) goes back to the queue when it has waited
#: this long (or a quarter of the worker timeout, if less): it was fetched for attempts expected to end at
#: once, and if they did not, another worker may be free to start it.
HOLD_LIMIT_S = 1.0
#: How often a consumer compares its ack set with the messages its process holds (``Held``), at most; a quarter
#: of the worker timeout if that is less, and at least a second.
SWEEP_S = 5.0


class Held:
    """The runs-queue messages a worker process holds: handed to it by its consumer, not yet acked, nacked or
    handed back. It outlives the consumer, which Dramatiq makes anew after each connection error.

    An id in the process's ack set that it does not hold was fetched by a call whose reply never came: a Redis
    that hung ran the fetch when it woke, after the client had given up and the consumer had started again.
    Dramatiq puts such ids back only when the process's heartbeat stops, which a live worker's never does, so
    the run would wait for a restart of its worker. An id found so at two sweeps in a row goes back on the
    queue (a fetch's reply late by a whole sweep makes a duplicate message at worst: its claim is fenced off).
    """

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()
        #: Ids in the ack set and not held at the last sweep, and when the next sweep is due.
        self.unheld: set[str] = set()
        self.sweep_at = 0.0

    def add(self, message_id: str) -> None:
        with self._lock:
            self._ids.add(message_id)

    def discard(self, message_ids: Iterable[str]) -> None:
        with self._lock:
            self._ids.difference_update(message_ids)

    def snapshot(self) -> set[str]:
        with self._lock:
            return set(self._ids)


def _work_message(item: Any) -> Any:
    """The message of a work queue item (G): a ``(priority, message)`` tuple before Dramatiq 2.2, since then a
    ``_WorkQueueItem`` with ``priority``, ``message`` and a queueing time."""
    return item[1] if isinstance(item, tuple) else item.message


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

    Beyond the free threads, it fetches runs ahead for the busy threads whose attempts the worker expects
    to end at once (``RunBroker.ahead``: up to ``AHEAD_LIMIT`` each), so that a freed thread finds its next
    run waiting instead of waiting for a fetch and a claim, two round trips that each wait for Redis's
    fsync. A run fetched ahead that still waits after ``HOLD_LIMIT_S`` is handed back to the queue for any
    worker.
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
        if self.queue_name == QUEUE and time.monotonic() >= self.broker.held.sweep_at:
            self._sweep()
        if self.message_cache:
            return self._next_cached()
        self._waiting_for = "any"  # before counting: a thread freed after the count wakes the wait below
        # Only for busy threads: whatever the hook says, at most AHEAD_LIMIT for each run this worker holds.
        ahead = min(self._ahead(), AHEAD_LIMIT * self.outstanding_message_count)
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
        with _connection_closed():
            self.message_cache = self.broker.do_fetch(self.queue_name, free)
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
        if self.queue_name == QUEUE:
            self.broker.held.add(_redis_id(message))
        proxy = MessageProxy(message)
        proxy.fetched_at = self._fetched_at  # type: ignore[attr-defined]  # read by _hand_back_held
        return proxy

    def _sweep(self) -> None:
        """Put back the ids of the ack set that this process has not held for a whole sweep (``Held``)."""
        held = self.broker.held
        held.sweep_at = time.monotonic() + min(SWEEP_S, max(1.0, self.broker.heartbeat_timeout / 4000))
        with _connection_closed():
            found = {text(i) for i in self.broker.client.smembers(self.broker.acks_key())}
        unheld = found - held.snapshot() - {_redis_id(m) for m in self.message_cache if m is not None}
        stranded, held.unheld = unheld & held.unheld, unheld - held.unheld
        if not stranded:
            return
        with _connection_closed():
            self.broker.do_requeue(QUEUE, *sorted(stranded))
        self._poll_at = 0.0  # look at the queue now: no nudge comes for what goes back
        log.warning(
            "put %d run message(s) back on the queue: fetched by a call whose reply Redis never sent, they waited"
            " in this worker's ack set",
            len(stranded),
        )

    def _ahead(self) -> int:
        """How many runs to fetch ahead (``RunBroker.ahead``), at most ``AHEAD_LIMIT`` for each thread."""
        hook = self.broker.ahead if self.queue_name == QUEUE else None
        if hook is None:
            return 0
        try:
            return max(0, min(AHEAD_LIMIT * self.prefetch, int(hook())))
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
        if all(now - getattr(_work_message(item), "fetched_at", now) < limit for item in list(work.queue)):
            return
        held: list[Any] = []
        others: list[Any] = []
        while True:
            try:
                item = work.get_nowait()
            except queue.Empty:
                break
            work.task_done()
            message = _work_message(item)
            mine = message.queue_name == QUEUE and message.message_id in self.queued_message_ids
            (held if mine else others).append(item)
        for item in others:
            work.put(item)
        if not held:
            return
        messages = [_work_message(item) for item in held]
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
        """Hand back messages this process fetched but will not run (it is stopping, or they waited too long)."""
        messages = list(messages)
        if messages and self.queue_name == QUEUE and self.broker.returned is not None:
            self.broker.returned(messages)
        with _connection_closed():
            super().requeue(messages)
        if self.queue_name == QUEUE:
            self.broker.held.discard(_redis_id(message) for message in messages)

    def close(self) -> None:
        """Hand back fetched messages that were never given to a thread, so their runs do not wait for the
        reaper (they may already be claimed; see ``RunBroker.fetched``)."""
        if self._nudges is not None:
            self._nudges.close()
        leftover, self.message_cache = self.message_cache, []
        try:
            self.requeue(message for message in leftover if message is not None)
        except (redis.RedisError, ConnectionClosed) as exc:  # requeue says ConnectionClosed for Redis away
            # Left in this worker's ack set: the next consumer's sweep puts them back (``Held``), as Dramatiq
            # does once the heartbeat stops; the reaper resumes a claimed run that overstays its time limit.
            log.warning("could not hand back %d message(s): %s", len(leftover), exc)

    def ack(self, message: Any) -> None:
        """Skip the round trip when the worker already acked the message in the step that recorded the run."""
        try:
            if getattr(message, "acked_with_run", False):
                self.queued_message_ids.discard(message.message_id)
            else:
                with _connection_closed():
                    super().ack(message)
            self._let_go(message)
        finally:
            self._wake()

    def nack(self, message: Any) -> None:
        try:
            with _connection_closed():
                super().nack(message)
            self._let_go(message)
        finally:
            self._wake()

    def _let_go(self, message: Any) -> None:
        if self.queue_name == QUEUE:
            self.broker.held.discard((_redis_id(message),))

    def _wake(self) -> None:
        """A thread is free: wake the consumer if that is what it waits for (a wake-up is a thread switch)."""
        waiting = self._waiting_for
        if waiting == "any" or (waiting == "all" and self.outstanding_message_count <= self._low):
            self._freed.set()


def _redis_id(message: Any) -> str:
    """The id a message is fetched and acked by (B; ``broker.redis_message_id``, which imports this module)."""
    return str(message.options["redis_message_id"])


@contextlib.contextmanager
def _connection_closed() -> Iterator[None]:
    """Dramatiq's consumer thread logs a ConnectionError in one line and reconnects, anything else as an
    "unexpected error" with its traceback; Redis gone or not answering (a timeout is not retried) is the former."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise ConnectionClosed(exc) from None
