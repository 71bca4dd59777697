"""APScheduler 3 drives time; it never decides what a tick is.

APScheduler's own ``CronTrigger`` counts Monday as weekday 0 and has no day-of-month/day-of-week OR
rule, and its job stores cannot be shared between processes. So it gets exactly one job of ours with
a custom trigger whose next fire time is the engine's next wake-up (the earliest tick of any schedule,
computed by ``jobs.site.cron``), one interval job that keeps the leader lease, and optionally one that
follows edits of the schedules (``scheduler.watch``). Missed-tick policy,
overlap and dedupe live in the engine, where tests can drive them. APScheduler's misfire grace is
off, so it never drops a late wake-up on its own; late wake-ups coalesce into one engine call, which
finds every due tick in Redis anyway.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from jobs import clock
from jobs.errors import NotLeader, StoreUnavailable

from .engine import Engine
from .leader import Lease
from .schedules import Schedule
from .watch import INTERVAL_S, ScheduleWatcher

log = logging.getLogger("backburner.scheduler")


class NextTickTrigger(BaseTrigger):
    """Fires at once, then at each wake-up the engine asks for (croniter semantics via ``jobs.site.cron``)."""

    __slots__ = ("engine",)

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        if previous_fire_time is None:
            return now  # first wake-up: start the schedules and catch up right away
        # From ``now`` if later: after a suspend APScheduler would otherwise step through every
        # missed second; the engine finds the due ticks in Redis either way.
        return self.engine.next_wakeup(max(previous_fire_time, now))

    def __str__(self) -> str:
        return f"next tick of {len(self.engine.schedules)} schedule(s)"


class Driver:
    """A BackgroundScheduler with the tick job, the lease job and, with a watcher, the watch job."""

    def __init__(self, engine: Engine, lease: Lease, watcher: ScheduleWatcher | None = None) -> None:
        self.engine = engine
        self.lease = lease
        self.watcher = watcher
        #: Held by a tick, and by a switch to edited schedules, so neither sees the other half done.
        self._ticking = threading.Lock()
        #: File schedules removed whose state is not forgotten yet (``_forget_removed``).
        self._removed: set[str] = set()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=3)},  # tick, lease and watch never wait on each other
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )

    def start(self) -> Driver:
        self.lease.refresh()  # before the first tick, so a lone scheduler fires from its first wake-up
        self.scheduler.add_job(
            self._keep_lease,
            IntervalTrigger(seconds=self.lease.renew_interval_s, timezone=UTC),
            id="lease",
            name="scheduler lease",
        )
        self.scheduler.add_job(self._tick, NextTickTrigger(self.engine), id="tick", name="cron ticks")
        if self.watcher is not None:
            trigger = IntervalTrigger(seconds=INTERVAL_S, timezone=UTC)
            self.scheduler.add_job(self._watch, trigger, id="watch", name="schedule edits")
        self.scheduler.start()
        return self

    def _keep_lease(self) -> None:
        """Renew or take the lease; a new leader catches up at once instead of at its next wake-up."""
        was_leader = self.lease.held()
        if self.lease.refresh() and not was_leader and self.scheduler.running:
            self.scheduler.modify_job("tick", next_run_time=clock.now())

    def _watch(self) -> None:
        """Switch to edited schedules, and wake the tick job so its next wake-up follows them."""
        assert self.watcher is not None
        try:
            schedules = self.watcher.check()
        except Exception:
            log.exception("could not look for schedule edits; trying again shortly")
            return
        if schedules is not None:
            with self._ticking:  # a tick under way with the old schedules could write a removed one's state back
                self._note_removed(self.engine.schedules, schedules)
                self.engine.schedules = schedules
                self._forget_removed()
            if self.scheduler.running:
                self.scheduler.modify_job("tick", next_run_time=clock.now())

    def _note_removed(self, old: Sequence[Schedule], new: Sequence[Schedule]) -> None:
        """Schedules gone from netlify.toml start afresh if they come back (an API schedule's state goes with its
        deletion); one back before its state was forgotten goes on from it."""
        kept = {schedule.name for schedule in new}
        self._removed |= {s.name for s in old if s.name not in kept and s.spec.source == "file"}
        self._removed -= kept

    def _forget_removed(self) -> None:
        """Forget the removed schedules' state: the leader's write, so done once this scheduler leads (at once, or
        at a later tick)."""
        if not self._removed or not self.lease.held():
            return
        for name in sorted(self._removed):
            try:
                self.engine.state.forget(name)
            except (NotLeader, StoreUnavailable) as exc:  # tried again at the next tick
                log.warning("could not forget removed schedule %r yet: %s", name, exc)
                return
            self._removed.discard(name)

    def _tick(self) -> None:
        try:
            with self._ticking:
                self._forget_removed()
                self.engine.tick(clock.now())
        except StoreUnavailable as error:
            log.warning("tick postponed: %s (due ticks fire when Redis is back, per catch-up policy)", error)
        except Exception:
            log.exception("tick failed; due ticks are retried at the next wake-up")

    def stop(self) -> None:
        """Stop waking up, let a running tick finish, then hand the lease over."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.lease.release()
