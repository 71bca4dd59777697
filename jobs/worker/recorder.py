"""Records finished attempts for a worker's threads, many per round trip.

A worker thread hands its attempt's outcome over and takes its next message at once; this thread
writes every outcome waiting at that moment in one pipelined round trip. Each run is still its own
compare-and-set with its message's ack inside, so a run's outcome, next message and ack still
commit together; only the waiting moves off the worker threads. An outcome not yet written when
the process dies is lost like an attempt cut short, and the reaper resumes its run.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from functools import partial
from typing import Any

import redis

from ..broker import RunBroker
from ..errors import StoreUnavailable
from ..lifecycle import FinishedAttempt, Lifecycle

log = logging.getLogger("backburner.worker")

#: How long outcomes wait for an unavailable Redis, before the reaper is left to resume their runs.
PATIENCE_S = 300.0


class Recorder:
    #: How long a woken recorder waits for more outcomes before it writes (a round trip costs about the same
    #: for one outcome as for eight).
    linger_s = 0.002

    def __init__(self, lifecycle: Lifecycle, broker: RunBroker, *, patience_s: float = PATIENCE_S) -> None:
        self.lifecycle = lifecycle
        self.broker = broker
        self.patience_s = patience_s
        self._pending: list[tuple[FinishedAttempt, Any]] = []
        self._ready = threading.Condition()
        self._stopping = False
        self._awake = False
        self._thread = threading.Thread(target=self._loop, name="backburner-recorder", daemon=True)

    def start(self) -> Recorder:
        self._thread.start()
        return self

    def submit(self, outcome: FinishedAttempt, message: Any = None) -> None:
        """Queue ``outcome``; ``message`` (the Dramatiq message that carried the attempt) is acked with it."""
        if message is not None:
            outcome = replace(outcome, also=partial(self.broker.ack_in, message=message))
            message.acked_with_run = True  # the consumer leaves the ack to us
        with self._ready:
            self._pending.append((outcome, message))
            if not self._awake:
                self._ready.notify()

    def stop(self, timeout_s: float | None = None) -> None:
        """Write what is pending, then stop."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
        self._thread.join(timeout_s)

    def _loop(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._stopping:
                    self._awake = False
                    self._ready.wait()
                self._awake = True  # submits need not wake it from here on: it looks before it sleeps
                if not self._pending:
                    return
                if not self._stopping and self.linger_s:  # attempts ending close together: one round trip
                    self._ready.wait(self.linger_s)
                batch, self._pending = self._pending, []
            try:
                self._record(batch)
            except Exception:  # never let one bad batch stop the recording of all later ones
                log.exception("could not record %d attempt outcome(s); the reaper will resume their runs", len(batch))

    def _record(self, batch: list[tuple[FinishedAttempt, Any]]) -> None:
        """Write ``batch``, waiting out a Redis outage rather than losing finished attempts."""
        deadline = time.monotonic() + self.patience_s
        delay = 0.1
        while True:
            try:
                recorded = self.lifecycle.finish_many([outcome for outcome, _ in batch])
                break
            except StoreUnavailable as exc:
                if time.monotonic() > deadline:
                    ids = ", ".join(outcome.run.id for outcome, _ in batch)
                    log.error("could not record the outcome of %s (%s); the reaper will resume them", ids, exc)
                    return
                batch = [(outcome.as_claimed(), message) for outcome, message in batch]
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        # A superseded attempt wrote nothing, so its message was not acked with it.
        stale = [message for (_, message), run in zip(batch, recorded, strict=True) if run is None and message]
        if stale:
            try:
                pipe = self.broker.client.pipeline(transaction=False)
                for message in stale:
                    self.broker.ack_in(pipe, message)
                pipe.execute()
            except redis.RedisError as exc:  # left in the ack set; Dramatiq requeues them, and they are stale
                log.warning("could not ack %d superseded message(s): %s", len(stale), exc)
