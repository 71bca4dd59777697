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
            self._forget_removed(self.engine.schedules, schedules)
            self.engine.schedules = schedules
            if self.scheduler.running:
                self.scheduler.modify_job("tick", next_run_time=clock.now())

    def _forget_removed(self, old: Sequence[Schedule], new: Sequence[Schedule]) -> None:
        """Schedules gone from netlify.toml start afresh if they come back (the leader's write; an API schedule's
        state goes with its deletion)."""
        if not self.lease.held():
            return
        kept = {schedule.name for schedule in new}
        for schedule in old:
            if schedule.name not in kept and schedule.spec.source == "file":
                try:
                    self.engine.state.forget(schedule.name)
                except (NotLeader, StoreUnavailable) as exc:  # it then goes on from where it stopped, as before
                    log.warning("could not forget removed schedule %r: %s", schedule.name, exc)

    def _tick(self) -> None:
        try:
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
