"""Starts what waits for a time at that time: delayed messages (retries, runs waiting for a slot) and delayed runs.

Both wait in Redis, never in a process: a delayed message's id in a sorted set scored by its due time
(``RunBroker.enqueue_in``), a delayed run in the due-time index (``jobs.delayed``). Every worker process
runs one timer thread. It reads the earliest due time of both, sleeps until then, and queues what is due:
messages by one atomic script (``promote_later.lua``), runs by one compare-and-set each; so timers that
wake together on several workers queue each message and run once. A write that adds a delayed message
or run nudges every timer (``jobs.broker.nudges``) so it looks again at once; without a nudge a timer
still looks every ``delayed_interval`` (the safety net). A retry therefore starts within milliseconds of
its due time, not at the next poll of a queue.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from .. import clock
from ..broker import Outage, RunBroker
from ..broker.dramatiq_internals import PROMOTE_BATCH
from ..broker.nudges import Nudges
from ..delayed import promote_due
from ..errors import StoreUnavailable
from ..store import RunStore

log = logging.getLogger("backburner.worker")


class Timer:
    def __init__(self, store: RunStore, broker: RunBroker, *, fallback_s: float = 1.0) -> None:
        self.store = store
        self.broker = broker
        self.fallback_s = fallback_s
        self._stop = threading.Event()
        self._nudges = Nudges(broker.client, broker.later_channel)
        self._thread = threading.Thread(target=self._loop, name="backburner-timer", daemon=True)

    def start(self) -> Timer:
        self._nudges.open()  # before the first look, so a write made after it nudges this timer
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._nudges.close()

    def due(self, now_ms: int) -> int | None:
        """Queue everything due by ``now_ms``; when the next thing is due (ms), if anything waits.

        A delayed run that stays due after its promotion (its record unreadable, say) is not counted: the
        timer would otherwise wake again at once, forever; it is tried again at the next safety-net look.
        """
        while True:
            moved, next_message = self.broker.promote_later(now_ms)
            if moved < PROMOTE_BATCH:
                break
        client = self.store.client
        head = client.zrange(self.store.keys.delayed, 0, 0, withscores=True)
        if head and int(head[0][1]) <= now_ms:
            for run in promote_due(self.store, now_ms):
                log.info("run %s: delayed until %s, now queued", run.id, run.run_at)
            head = client.zrangebyscore(self.store.keys.delayed, f"({now_ms}", "+inf", start=0, num=1, withscores=True)
        next_run = int(head[0][1]) if head else None
        found = [t for t in (next_message, next_run) if t is not None]
        return min(found) if found else None

    def _loop(self) -> None:
        outage = Outage(log, "delayed runs and retries")
        while not self._stop.is_set():
            wait_s = self.fallback_s
            try:
                upcoming = self.due(clock.now_ms())
                outage.answered()
                if upcoming is not None:
                    wait_s = min(wait_s, max(0.0, (upcoming - clock.now_ms()) / 1000))
            except (StoreUnavailable, redis.RedisError) as exc:
                outage.failed(exc, "queued once it is back")
            except Exception:
                log.exception("queueing due delayed runs and retries failed")
            self._sleep(wait_s)

    def _sleep(self, wait_s: float) -> None:
        """Until ``wait_s`` has passed or a nudge came, in slices so that ``stop`` is noticed soon."""
        deadline = time.monotonic() + wait_s
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._nudges.wait(min(remaining, 0.25)):
                return
