"""What one wake-up of the scheduler does at ``now``: catch up, apply the overlap policy, fire.

``Engine.tick(now)`` takes the time as an argument, so tests drive it through any instant (DST
nights, restarts after an outage) without sleeping; the APScheduler driver calls it with the real
clock. All state it needs lives in Redis (``jobs.schedules.state``), so any scheduler that holds the
lease can take over from any other, and every tick's run is deduplicated on (schedule, tick). Every schedule,
from netlify.toml or the API, gets the same treatment; policies are its function's.

Overlap, when the previous scheduled run is still queued, running or retrying:

    skip    the tick does not run; it is recorded (``skipped`` count, ``skips`` list)
    queue   the tick waits and runs when the previous run ends (its ``scheduled_for`` stays the tick's);
            one tick waits at most, later ones are recorded as skipped ("queue-full"), so a function
            slower than its schedule cannot pile up a backlog
    allow   the tick runs at once, concurrently
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from jobs.errors import NotLeader, ScheduleNotFound
from jobs.runtime import Runtime
from jobs.schedules.state import ScheduleState, ScheduleStatus, SkipReason
from jobs.schedules.ticks import active_previous, create_tick_run, existing_tick_run
from jobs.writes import Fence

from .catchup import plan_ticks
from .schedules import Schedule

log = logging.getLogger("backburner.scheduler")

#: The longest the engine sleeps: how soon a new leader starts and a queued tick follows its predecessor.
POLL_S = 1.0

Action = Literal["fired", "duplicate", "skipped", "queued", "missed"]


@dataclass(frozen=True)
class Outcome:
    """What happened to one tick of one schedule."""

    schedule: str
    tick: datetime
    action: Action
    run_id: str | None = None


class Engine:
    """Fires the due ticks of ``schedules`` while ``is_leader()`` says this scheduler may."""

    def __init__(
        self,
        runtime: Runtime,
        schedules: Sequence[Schedule],
        *,
        is_leader: Callable[[], bool] = lambda: True,
        fence: Fence | None = None,
        grace_s: float | None = None,
    ) -> None:
        self.runtime = runtime
        self.schedules = list(schedules)
        self.is_leader = is_leader
        self.fence = fence
        self.grace_s = runtime.settings.schedule_grace if grace_s is None else grace_s
        self.state = ScheduleState(runtime.client, runtime.store.keys, fence)

    def next_wakeup(self, after: datetime) -> datetime:
        """The earliest tick of any schedule after ``after``, but no later than ``POLL_S`` after it."""
        latest = after + timedelta(seconds=POLL_S)
        return min([latest, *(schedule.cron.next_after(after) for schedule in self.schedules)])

    def tick(self, now: datetime) -> list[Outcome]:
        """Handle every schedule's ticks up to ``now``; nothing unless this scheduler leads."""
        schedules = self.schedules  # one list for the whole tick: an edit of the schedules replaces it meanwhile
        if not schedules or not self.is_leader():
            return []
        statuses = self.state.load([schedule.name for schedule in schedules])
        outcomes: list[Outcome] = []
        for schedule in schedules:
            if not self.is_leader():  # lost the lease mid-way: the new leader carries on from Redis
                break
            try:
                self._tick_one(schedule, statuses[schedule.name], now, outcomes)
            except NotLeader as lost:  # a write landed after the lead passed on: dropped, as is the rest
                log.warning("%s; the new leader carries on from Redis", lost.message)
                break
            except ScheduleNotFound:  # deleted through the API since this tick began: nothing more to do for it
                log.info("schedule %r was deleted; its tick is dropped", schedule.name)
        return outcomes

    def _tick_one(self, schedule: Schedule, status: ScheduleStatus, now: datetime, outcomes: list[Outcome]) -> None:
        """Add what happened to each due tick of ``schedule`` to ``outcomes``, logging each at once (a failure
        later in the tick must not hide a run already made)."""
        name, function, revision = schedule.name, schedule.function, schedule.revision
        cron = f"{schedule.spec.cron} {schedule.spec.timezone}"
        if status.handled_until is None:
            self.state.start(name, now, cron=cron, revision=revision)
            return
        if status.cron is None:  # state from before the field was kept: noted, its ticks go on as they were
            self.state.restart(name, status.handled_until, cron=cron, revision=revision)
        elif status.cron != cron:  # an edited expression or zone: its ticks from before the edit were never due
            self.state.restart(name, now, cron=cron, revision=revision)
            log.info("schedule %r is now %s: it fires from now on", name, cron)
            return
        if status.paused:
            return  # resume moves handled_until to the resume time, so nothing is caught up
        if status.pending is not None and active_previous(self.runtime.store, status) is None:
            _said(outcomes, self._fire(schedule, status.pending))  # then cleared: a failed fire keeps it waiting
            self.state.set_pending(name, None, revision=revision)
            status = self.state.get(name)
        plan = plan_ticks(
            schedule.cron,
            catchup=function.catchup,
            window_s=function.catchup_window_s,
            grace_s=self.grace_s,
            handled_until=status.handled_until or now,
            now=now,
        )
        if plan.missed:
            self.state.record_skips(name, plan.missed, "missed", revision=revision)
            for tick in plan.missed:
                _said(outcomes, Outcome(name, tick, "missed"))
        for tick in plan.fire:
            _said(outcomes, self._handle(schedule, tick))
        if plan.until is not None:
            self.state.advance(name, plan.until, revision=revision)

    def _handle(self, schedule: Schedule, tick: datetime) -> Outcome:
        """One due tick: already fired elsewhere, blocked by the overlap policy, or fired now."""
        name, overlap, revision = schedule.name, schedule.function.overlap, schedule.revision
        existing = existing_tick_run(self.runtime.store, name, schedule.function.name, tick)
        if existing is not None:  # a previous leader fired it before it could move handled_until
            return Outcome(name, tick, "duplicate", existing)
        if overlap != "allow":
            status = self.state.get(name)
            previous = active_previous(self.runtime.store, status)
            if previous is not None:
                if overlap == "queue" and status.pending is None:
                    self.state.set_pending(name, tick, revision=revision)
                    return Outcome(name, tick, "queued", previous.id)
                reason: SkipReason = "queue-full" if overlap == "queue" else "overlap"
                self.state.record_skips(name, [tick], reason, previous.id, revision=revision)
                return Outcome(name, tick, "skipped", previous.id)
        return self._fire(schedule, tick)

    def _fire(self, schedule: Schedule, tick: datetime) -> Outcome:
        next_run = schedule.cron.next_after(tick)
        revision = schedule.revision
        fence = self.state.fence_for(schedule.name, revision)  # an API schedule deleted meanwhile gets no run either
        run, created = create_tick_run(
            self.runtime.store, schedule.name, schedule.function, tick, next_run, schedule.payload, fence=fence
        )
        self.state.fired(schedule.name, tick, run.id, revision=revision)
        return Outcome(schedule.name, tick, "fired" if created else "duplicate", run.id)


def _said(outcomes: list[Outcome], outcome: Outcome) -> None:
    """Add ``outcome`` to the tick's list and log it as it happens."""
    outcomes.append(outcome)
    if outcome.action != "duplicate":
        level = logging.INFO if outcome.action in ("fired", "queued") else logging.WARNING
        log.log(level, "%s %s tick %s (run %s)", outcome.schedule, outcome.action, outcome.tick, outcome.run_id)
