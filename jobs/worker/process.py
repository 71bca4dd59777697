"""A worker process: Dramatiq consumers feeding attempts to warm, killable child processes."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import dramatiq
import redis
from dramatiq.middleware import CurrentMessage

from ..artifacts.stores import store_url
from ..broker import (
    ACTOR,
    AHEAD_LIMIT,
    QUEUE,
    build_worker,
    connect,
    connect_quick,
    redis_message_id,
    wait_for_redis,
    warn_of_risks,
)
from ..delivery.destinations import check_secret
from ..delivery.outbox import Deliverer
from ..errors import BackburnerError, ConfigError, RunUnreadable
from ..execution.containment import probe
from ..execution.isolation import ChildPool
from ..execution.task import Task, attempt_context
from ..lifecycle import FinishedAttempt
from ..runs import Result
from ..runtime import Runtime
from ..settings import Settings
from ..store import NoSlot
from ..wiring import open_runtime
from .reaper import Reaper
from .recorder import Recorder
from .retention import Retention
from .timer import Timer

log = logging.getLogger("backburner.worker")

#: A run waiting for a concurrency slot is woken when one frees; failing that, it looks again this much later.
SLOT_FALLBACK_S = 30.0
#: A busy thread lets the worker fetch runs ahead for it while its attempt, of a function whose attempts
#: have lately taken less than this, has been running less than this (``RunBroker.ahead``).
AHEAD_WITHIN_S = 0.25
#: How many: the runs such a thread should start within this time, going by how long its function's attempts
#: lately took (at least one, at most ``AHEAD_LIMIT``). Each refill costs a fetch and a claim, two round trips
#: that wait for Redis's fsync; with one or two runs ahead per thread, threads of quick attempts waited on
#: them (2 x 8 drain of no-op runs: +17% against two ahead, ``bench/README.md``).
AHEAD_HORIZON_S = 0.1
_UNCLAIMED: Any = object()


class WorkerProcess:
    """One process: ``threads`` Dramatiq worker threads, each running attempts in a warm child."""

    def __init__(self, settings: Settings, *, threads: int = 8, poll_ms: int = 100) -> None:
        self.settings = settings
        self.threads = threads
        self.poll_ms = poll_ms
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.runtime: Runtime | None = None
        self.pool: ChildPool | None = None
        #: Reads the stop marks of running attempts, with a short timeout (``connect_quick``).
        self._watch: redis.Redis | None = None
        self.worker: dramatiq.Worker | None = None
        self.reaper: Reaper | None = None
        self.deliverer: Deliverer | None = None
        self.recorder: Recorder | None = None
        self.timer: Timer | None = None
        #: Runs claimed when their message was fetched, by Redis message id, until a thread takes them.
        self._claims: dict[str, Any] = {}
        #: The attempts running now, by thread: function and start (monotonic).
        self._busy: dict[int, tuple[str, float]] = {}
        #: Per function, how long its attempts take lately: the longest at once, then closing in on shorter ones.
        self._typical: dict[str, float] = {}
        self.site_root = str(settings.site.resolve())

    def start(self) -> WorkerProcess:
        self.runtime = runtime = open_runtime(self.settings)
        try:
            check_secret(self.settings, runtime.site)  # before anything starts: say so at start-up, not at 3 a.m.
        except ConfigError:
            runtime.close()
            raise
        self.deliverer = Deliverer(self.settings, runtime.store, runtime.sites.lookup, self.id)
        try:
            containment = probe(self.settings.containment)
        except RuntimeError as exc:
            runtime.close()
            raise ConfigError(str(exc)) from None
        size = self.settings.pool_size or self.threads
        self.pool = ChildPool(
            size, max_runs=self.settings.child_max_runs, containment=containment, fence_s=self.settings.fence_after
        ).start()
        # A watch read held by a dead link must end well before the pause is due (Settings.fence_after).
        margin = self.settings.worker_timeout - self.settings.fence_after
        self._watch = connect_quick(self.settings, timeout_s=min(1.0, max(0.1, margin / 3)))
        dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, broker=runtime.broker)(self.execute)
        runtime.broker.fetched = self._claim_fetched
        runtime.broker.returned = self._release_returned
        runtime.broker.ahead = self._ahead
        self.worker = build_worker(runtime.broker, self.threads, self.poll_ms)
        self.recorder = Recorder(runtime.lifecycle, runtime.broker).start()
        retention = Retention(self.settings, runtime.client, runtime.store.keys, lambda: runtime.site, self.id)
        self.reaper = Reaper(
            self.settings, runtime.lifecycle, self.id, retention=retention, landed=self.pool.tether.landed
        )
        self.reaper.start()
        self.timer = Timer(runtime.store, runtime.broker, fallback_s=self.settings.delayed_interval).start()
        self.deliverer.start()
        self.worker.start()
        log.info("worker %s started with %d threads; containment: %s", self.id, self.threads, containment.describe())
        return self

    def execute(self, run_id: str, token: str, snapshot: str | None = None) -> None:
        """The Dramatiq actor: one attempt of one run, if ``token`` is still the run's current one."""
        assert self.runtime is not None and self.pool is not None and self.recorder is not None
        runtime = self.runtime
        message = CurrentMessage.get_current_message()
        message_id = redis_message_id(message) if message else None
        claimed = self._claims.pop(message_id, _UNCLAIMED) if message_id else _UNCLAIMED
        if claimed is _UNCLAIMED:
            try:
                claimed = runtime.lifecycle.claim(
                    run_id, token, self.id, snapshot, concurrency=self._concurrency, message_id=message_id
                )
            except NoSlot as exc:
                claimed = exc
            except RunUnreadable:  # logged once; nothing can run from a record this version cannot read
                return
        if isinstance(claimed, NoSlot):
            # Every slot of the function is taken: wait for the write that frees one to wake this run.
            runtime.lifecycle.wait_for_slot(run_id, token, SLOT_FALLBACK_S)
            return
        if claimed is None:
            return
        run, event = claimed
        try:
            function = runtime.function(run.function)
        except BackburnerError as exc:
            result = Result("error", error={"type": type(exc).__name__, "message": exc.message})
        else:
            limit = run.time_limit_s
            store = store_url(self.settings, function)
            context = attempt_context(
                function.name,
                run.id,
                limit,
                namespace=self.settings.namespace,
                trigger=run.trigger,
                attempt=run.attempt,
                idempotency_key=run.idempotency_key,
                scheduled_for=run.scheduled_for,
                redis_url=self.settings.redis_url,
                artifacts_url=store,
                site=self.site_root,
                max_result=function.max_result,
                log_rate=self.settings.log_rate or None,
                log_burst=self.settings.log_burst,
            )
            task = Task(function.name, str(function.path), event, context, tuple(function.environment.items()))
            thread = threading.get_ident()
            self._busy[thread] = (function.name, time.monotonic())
            try:
                result = self.pool.run(
                    task,
                    limit,
                    cancelled=lambda: self._must_stop(run_id, token),
                    held=self._held,
                    memory_limit=function.memory_limit,
                )
            finally:
                del self._busy[thread]
            self._learn(function.name, result.duration_s)
            result = replace(result, artifact_store=store)
        if result.ok:
            log.info("run %s attempt %d of %s: %s", run.id, run.attempt, run.function, result.kind)
        else:  # what failed, in a line (redacted in the child); the run's record has the rest
            error = result.error or {}
            said = f"{error.get('type')}: {str(error.get('message'))[:300]}"
            log.info("run %s attempt %d of %s: %s: %s", run.id, run.attempt, run.function, result.kind, said)
        self.recorder.submit(FinishedAttempt(run, token, result), message)

    def _claim_fetched(self, data: list[Any]) -> None:
        """Claim a fetched batch's runs in one round trip, before any thread takes them (``RunBroker.fetched``).

        A message whose claim is not in ``_claims`` when its thread starts (no record in it, or this
        failed) is claimed by that thread, as before. Nothing may escape from here: the batch would
        be lost in this consumer's ack set.
        """
        assert self.runtime is not None
        try:
            batch: list[tuple[str, str, str, str]] = []
            for body in data:
                message = body if isinstance(body, dramatiq.Message) or body is None else dramatiq.Message.decode(body)
                if message is not None and message.actor_name == ACTOR and len(message.args) == 3:
                    batch.append((*message.args, redis_message_id(message)))
            if not batch:
                return
            claims = self.runtime.lifecycle.claim_many(batch, self.id, concurrency=self._concurrency)
        except Exception as exc:  # the threads claim for themselves
            log.warning("claiming a fetched batch failed (%s); each run is claimed by its thread", exc)
            return
        for (*_, message_id), claimed in zip(batch, claims, strict=True):
            if not isinstance(claimed, BackburnerError):
                self._claims[message_id] = claimed

    def _release_returned(self, messages: list[Any]) -> None:
        """Undo the claims of fetched messages that will not run here (``RunBroker.returned``)."""
        assert self.runtime is not None
        for message in messages:
            claimed = self._claims.pop(redis_message_id(message), None)
            if isinstance(claimed, tuple):
                run = claimed[0]
                try:
                    self.runtime.lifecycle.release(run, run.token)
                except BackburnerError as exc:  # the reaper resumes it once this worker is gone
                    log.warning("run %s: could not release its claim (%s)", run.id, exc)

    def _learn(self, function: str, took_s: float) -> None:
        """Remember how long ``function``'s attempt took: a slow one counts at once, quick ones gradually."""
        typical = self._typical.get(function)
        self._typical[function] = took_s if typical is None or took_s > typical else typical + (took_s - typical) / 8

    def _ahead(self) -> int:
        """Runs to fetch ahead for the busy threads expected to be free at once (``RunBroker.ahead``), so that each
        finds its next run waiting. A thread running an attempt of a function never seen, or lately slow, or
        running for ``AHEAD_WITHIN_S`` already, gets none: no run should wait behind such an attempt while
        another worker may be idle."""
        now, typical, wanted = time.monotonic(), self._typical, 0
        for function, started in list(self._busy.values()):
            took = typical.get(function, AHEAD_WITHIN_S)
            if now - started < AHEAD_WITHIN_S and took < AHEAD_WITHIN_S:
                wanted += max(1, min(AHEAD_LIMIT, int(AHEAD_HORIZON_S / max(took, 0.001))))
        return wanted

    def _concurrency(self, name: str) -> int | None:
        assert self.runtime is not None
        try:
            return self.runtime.function(name).concurrency
        except BackburnerError:
            return None

    def _must_stop(self, run_id: str, token: str) -> bool | None:
        """Whether a running attempt must be stopped: its run was cancelled, or the attempt was given up for lost
        while this worker stalled or was cut off (and resumed elsewhere: it must not run beside the new attempt).
        None when Redis cannot say."""
        assert self.runtime is not None
        if self._held():  # no read while cut off: it would only hold up the pause
            return None
        try:
            why = self.runtime.store.attempt_stop(run_id, token, self._watch)
        except Exception:  # Redis unavailable: the attempt goes on (or stays paused, see _held)
            return None
        if why == "lost":
            log.warning("run %s: this attempt was given up for lost while the worker stalled; stopping it", run_id)
        return why is not None

    def _held(self) -> bool:
        """Whether running attempts must pause: this worker's heartbeats have not landed for so long that other
        workers may soon give it up for lost and resume its runs.

        A worker cut off from Redis cannot tell a partition (the others will resume its runs) from Redis being
        down for everyone (nobody will): pausing is right for both. Its attempts stop short of ever running
        beside their resumed selves, and once heartbeats land again an attempt whose run was not given up goes
        on, so an outage costs no attempt. The pause comes at ``Settings.fence_after``, short of ``worker_timeout``.
        """
        return self.reaper is not None and self.reaper.silent_for() >= self.settings.fence_after

    def stop(self, timeout_s: float | None = None) -> None:
        """Let running attempts finish (up to ``timeout_s``), then stop children and heartbeats."""
        if self.worker is not None:
            self.worker.stop(timeout=int((timeout_s if timeout_s is not None else 960) * 1000))
        if self.recorder is not None:
            self.recorder.stop()
        parts = [part for part in (self.timer, self.reaper, self.deliverer) if part is not None]
        with ThreadPoolExecutor(max(1, len(parts))) as stopping:  # side by side: each may wait out a hung Redis
            list(stopping.map(lambda part: part.stop(), parts))
        if self.pool is not None:
            self.pool.close()
        if self._watch is not None:
            self._watch.close()
        if self.runtime is not None:
            self.runtime.close()


def shutdown_timeout(runtime: Runtime) -> float:
    """Above the longest time limit in the site, so a deploy never cuts a run short."""
    limits = [f.limits("http").time_limit_s for f in runtime.site.functions.values()]
    return max([900.0, *limits]) + 60.0


#: What a second SIGTERM or SIGINT leaves behind, said on stderr as the worker exits.
_STOPPED_AT_ONCE = (
    b"worker: a second signal, so it stops at once; its running attempts are resumed by another worker once"
    b" BACKBURNER_WORKER_TIMEOUT has passed (each counts as a lost attempt)\n"
)


def run_worker(settings: Settings, *, threads: int = 8) -> None:
    """Run one worker process until SIGTERM or SIGINT; a second signal stops at once."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set():
            # Written raw: the logging lock may be held by the very code this signal interrupted.
            os.write(2, _STOPPED_AT_ONCE)
            os._exit(1)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    probe = connect(settings)
    if not wait_for_redis(probe, stop, log):
        return
    warn_of_risks(probe, log)
    probe.close()
    process = WorkerProcess(settings, threads=threads).start()
    assert process.runtime is not None
    stop.wait()
    log.info("worker %s stopping; waiting for running attempts", process.id)
    process.stop(shutdown_timeout(process.runtime))
