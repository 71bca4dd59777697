"""Worker heartbeats and the reaper that resumes runs whose worker died.

Dramatiq only notices a dead worker after a minute and then by chance; we want a killed
worker's run to continue within seconds. Every worker process heartbeats into a sorted set; one
worker at a time (a short Redis lock) sweeps the active runs and:

- a ``running`` run whose worker has not heartbeated for ``worker_timeout`` loses its attempt and
  resumes at once (or fails, if that was the last attempt);
- a ``running`` run past its time limit plus ``worker_timeout`` is treated the same way, even if its
  worker still heartbeats (the worker could not record the outcome);
- a ``retrying`` run ``retry_grace`` past its due time, or a ``queued`` run older than
  ``worker_timeout`` whose message is no longer in Redis, gets a fresh message;
- a ``delayed`` run ``retry_grace`` past its ``run_at`` (its entry in the due-time index went missing) is
  queued.

Due delayed runs are queued at their time by every worker's timer (``jobs.worker.timer``).

Heartbeats that stopped because Redis went away (or hung, or this worker stalled) say nothing about the
workers: after such a gap the reaper passes judgment on no worker until ``worker_timeout`` has gone by
with Redis answering, so that live workers heartbeat again and recorders write what they held.

The same periodic loop drives retention (``jobs.worker.retention``), which has its own slower cadence
and lock. Heartbeats have a thread of their own, so a long sweep never makes a live worker look dead.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import redis

from .. import clock
from ..broker import Outage
from ..delayed import promote_ids
from ..execution.endings import note
from ..keys import text
from ..lifecycle import Lifecycle
from ..runs import Run, readable
from ..settings import Settings
from .retention import Retention

log = logging.getLogger("backburner.reaper")

#: Runs read per round trip while sweeping, so a backlog of thousands costs a handful of calls.
SWEEP_BATCH = 500


class Reaper:
    def __init__(
        self,
        settings: Settings,
        lifecycle: Lifecycle,
        worker_id: str,
        *,
        retention: Retention | None = None,
        landed: Callable[[float], None] | None = None,
    ) -> None:
        """``landed`` hears, for each heartbeat that landed, when it was sent (monotonic): the worker's children
        pause themselves when it has not for too long (``jobs.execution.tether``)."""
        self.settings = settings
        self.landed = landed
        self.retention = retention
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.keys = self.store.keys
        self.client: redis.Redis = self.store.client
        self.worker_id = worker_id
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        #: When Redis last came back after a gap (monotonic); no worker is judged until worker_timeout after.
        #: A starting worker has just reached Redis: it judges at once, as a replacement for a dead one should.
        self._settled_at = time.monotonic() - settings.worker_timeout
        self._last_beat = time.monotonic()
        #: When the last heartbeat that landed was sent (monotonic): other workers count from its score.
        self._beat_sent = time.monotonic()

    def start(self) -> None:
        self.heartbeat()
        loops = (
            (self._beat, "backburner-heartbeat"),
            (self._loop, "backburner-reaper"),
        )
        for target, name in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        deadline = time.monotonic() + 5  # for both threads: each may be waiting out a hung Redis
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self.silent_for() > self._gap_s():  # Redis has not answered lately: the entry ages out as a crash's would
            return
        with contextlib.suppress(redis.RedisError):
            self.client.zrem(self.keys.workers, self.worker_id)

    def heartbeat(self) -> None:
        sent = time.monotonic()
        self.client.zadd(self.keys.workers, {self.worker_id: clock.now_ms()})
        if self.landed is not None:  # first: the children may run on as long as this worker's attempts may
            self.landed(sent)
        self._beat_sent = sent

    def silent_for(self) -> float:
        """Seconds since the last heartbeat that landed was sent: other workers give this one up for lost, and
        resume its runs, once this reaches ``worker_timeout`` by their clocks."""
        return time.monotonic() - self._beat_sent

    def _beat(self) -> None:
        outage = Outage(log, "heartbeat")
        while not self._stop.wait(self.settings.heartbeat_interval):
            try:
                self.heartbeat()
            except redis.RedisError as exc:
                outage.failed(exc)
                continue
            outage.answered()
            now = time.monotonic()
            if now - self._last_beat > self._gap_s():  # Redis was away or hung, or this worker stalled
                self._settled_at = now
            self._last_beat = now

    def _gap_s(self) -> float:
        """A pause between heartbeats longer than this means they could not be written meanwhile."""
        return 2 * self.settings.heartbeat_interval + 1.0

    def _settled(self) -> bool:
        """Whether Redis has answered long enough for heartbeats to say who is alive.

        This worker's own heartbeats not landing lately (Redis away, or back but not yet written to) starts the
        wait afresh: a sweep right after Redis restarts would find every worker's heartbeat stale.
        """
        now = time.monotonic()
        if now - self._last_beat > self._gap_s():
            self._settled_at = now
        return now - self._settled_at >= self.settings.worker_timeout

    def _loop(self) -> None:
        """Sweep every ``reap_interval`` (one worker at a time), and give retention its turn."""
        first, outage = True, Outage(log, "reaper")
        while not self._stop.wait(0 if first else self.settings.reap_interval):
            first = False
            try:
                lock_ms = int(self.settings.reap_interval * 1000)
                if self.client.set(self.keys.reaper_lock, self.worker_id, nx=True, px=lock_ms):
                    self.sweep()
                if self.retention is not None:
                    self.retention.maybe_sweep()
                outage.answered()
            except redis.RedisError as exc:
                outage.failed(exc)
            except Exception:
                log.exception("reaper sweep failed")

    def sweep(self) -> int:
        """Look at every active run that may need it; return how many were resumed or re-dispatched."""
        began = time.monotonic()
        now_ms = clock.now_ms()
        cutoff = now_ms - int(self.settings.worker_timeout * 1000)
        alive = {text(member) for member in self.client.zrangebyscore(self.keys.workers, cutoff, "+inf")}
        alive.add(self.worker_id)  # it is sweeping: whatever its heartbeat's score says, it is alive
        self.client.zremrangebyscore(self.keys.workers, "-inf", cutoff - 86_400_000)
        acted = 0
        # Queued runs younger than the worker timeout and retries not yet past their grace need no look.
        horizon = min(self.settings.worker_timeout, self.settings.retry_grace)
        ids = self.store.active_ids(due_ms=now_ms - int(horizon * 1000))
        for start in range(0, len(ids), SWEEP_BATCH):
            batch = ids[start : start + SWEEP_BATCH]
            raws = self.client.mget([self.keys.run(run_id) for run_id in batch])
            if time.monotonic() - began > self._gap_s():  # these reads waited on a Redis that hung
                self._settled_at = time.monotonic()
            # An unreadable record (another version's, or corrupted) is logged and passed over, never the sweep.
            found = [readable(raw, run_id) for run_id, raw in zip(batch, raws, strict=True) if raw is not None]
            runs = [run for run in found if run is not None]
            present = self._messages_present([run for run in runs if self._queued_long(run)])
            for run in runs:
                try:
                    if self._reap(run, alive, present):
                        acted += 1
                except redis.RedisError:
                    raise
                except Exception:  # one run the sweep cannot handle must not stop it for every other run
                    log.exception("run %s: the sweep could not handle it; passing over it", run.id)
        return acted

    def _queued_long(self, run: Run) -> bool:
        """Queued for longer than a worker needs to notice it: is its message still there?"""
        timeout = timedelta(seconds=self.settings.worker_timeout)
        return run.status == "queued" and clock.now() > clock.parse_iso(run.queued_at) + timeout

    def _reap(self, run: Run, alive: set[str], present: set[str]) -> bool:
        timeout = timedelta(seconds=self.settings.worker_timeout)
        now = clock.now()
        if run.status == "running" and run.worker and self._settled():
            started = clock.parse_iso(run.attempts[-1].started_at)
            overdue = now > started + timedelta(seconds=run.time_limit_s) + timeout
            if run.worker not in alive or overdue:
                why = "stopped heartbeating" if run.worker not in alive else "did not report the outcome"
                reason = f"worker {run.worker} {why} during attempt {run.attempt}"
                log.warning("run %s: %s; resuming", run.id, reason)
                lost = self.lifecycle.lose(run.id, run.worker, reason)
                if lost is not None:  # its child said nothing of it: the run's log says so, as for a timeout
                    with self.client.pipeline() as pipe:
                        note(pipe, self.keys, run.id, lost.attempts[-1].n, f"WorkerLost: {reason}")
                        pipe.execute()
                return lost is not None
        elif run.status == "retrying" and run.next_attempt_at:
            due = clock.parse_iso(run.next_attempt_at)
            if now > due + timedelta(seconds=self.settings.retry_grace):
                log.warning("run %s: retry due at %s did not start; re-dispatching", run.id, run.next_attempt_at)
                return self.lifecycle.redispatch(run.id, run.token) is not None
        elif run.status == "delayed" and run.run_at:
            if now > clock.parse_iso(run.run_at) + timedelta(seconds=self.settings.retry_grace):
                log.warning("run %s: delayed until %s but not queued; queueing it now", run.id, run.run_at)
                return bool(promote_ids(self.store, [run.id]))
        elif run.status == "queued" and self._queued_long(run) and run.id not in present:
            log.warning("run %s: queued message missing; re-dispatching", run.id)
            return self.lifecycle.redispatch(run.id, run.token) is not None
        return False

    def _messages_present(self, runs: list[Run]) -> set[str]:
        """Ids of ``runs`` whose current message is still in Redis (queued, or fetched by a consumer);
        one round trip for them all."""
        if not runs:
            return set()
        # Due now, or delayed (a run waiting for a concurrency slot).
        hashes = (self.store.broker.queue_keys()[1], self.store.broker.queue_keys(delayed=True)[1])
        pipe = self.client.pipeline(transaction=False)
        for run in runs:
            for messages in hashes:
                pipe.hexists(messages, run.message_id or "")
        found = pipe.execute()
        return {run.id for n, run in enumerate(runs) if run.message_id and (found[2 * n] or found[2 * n + 1])}
