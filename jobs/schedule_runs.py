"""Creating scheduled runs: the tick fired by the scheduler, and "run now" asked for through the API.

Both make a run with ``trigger = "schedule"`` and Netlify's scheduled event: body
``{"next_run": ISO}`` (the schedule's next fire time after this one), headers ``x-nf-event: schedule``
and ``user-agent: Netlify Clockwork``. A tick's run carries the idempotency key
``schedule:<function>:<tick ISO>``, so however many schedulers fire the same tick, one run exists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import clock
from .errors import Conflict, FunctionNotFound, RunNotFound
from .event import payload_event
from .keys import text
from .lifecycle import new_run
from .runs import ACTIVE, Idempotency, Run
from .schedule_state import ScheduleState, ScheduleStatus
from .site import Function
from .site.cron import Cron
from .store import RunStore, translate_errors

SCHEDULE_HEADERS = {"x-nf-event": "schedule", "user-agent": "Netlify Clockwork"}


class ScheduleNotFound(FunctionNotFound):
    """Raised when a function exists but has no schedule (so /api/schedules/{name} does not)."""

    code = "schedule_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.message = f'Function {name!r} has no schedule; add `schedule = "..."` to it in netlify.toml.'
        self.args = (self.message,)


def tick_key(function: str, tick: datetime) -> str:
    """The idempotency key of one tick: equal for every scheduler that fires it."""
    return f"schedule:{function}:{clock.iso(tick)}"


def scheduled_event(function: str, next_run: datetime) -> dict[str, Any]:
    """Netlify's scheduled invocation: a POST whose body names the next fire time."""
    return payload_event(function, {"next_run": clock.iso(next_run)}, headers=SCHEDULE_HEADERS)


def existing_tick_run(store: RunStore, function: str, tick: datetime) -> str | None:
    """The id of the run already created for ``tick`` (by any scheduler), if any."""
    with translate_errors("looking up a tick"):
        raw = store.client.get(store.keys.idempotency(function, "schedule", tick_key(function, tick)))
    return None if raw is None else text(raw).partition(" ")[0]


def create_tick_run(store: RunStore, function: Function, tick: datetime, next_run: datetime) -> tuple[Run, bool]:
    """The run for ``tick``; ``(existing run, False)`` if another scheduler already made it."""
    key = tick_key(function.name, tick)
    run = new_run(function, "schedule", scheduled_for=clock.iso(tick), idempotency_key=key)
    return store.create(run, scheduled_event(function.name, next_run), idempotency=Idempotency(key, "schedule"))


def active_previous(store: RunStore, status: ScheduleStatus) -> Run | None:
    """The schedule's newest run if it is still queued, running or retrying (what overlap looks at)."""
    if status.last_run is None:
        return None
    try:
        run = store.get(status.last_run)
    except RunNotFound:  # deleted by retention
        return None
    return run if run.status in ACTIVE else None


def run_now(store: RunStore, state: ScheduleState, function: Function, cron: Cron, now: datetime) -> Run:
    """A scheduled run at ``now``, outside the cron times and never deduplicated against a tick.

    ``overlap = "skip"`` is honoured (Conflict while the previous run is active), so "run now" cannot
    produce the overlap the schedule forbids; "queue" and "allow" create the run at once.
    """
    if function.overlap == "skip":
        previous = active_previous(store, state.get(function.name))
        if previous is not None:
            raise Conflict(
                f'Schedule {function.name!r} has overlap = "skip" and its run {previous.id} is still '
                f"{previous.status}; wait for it or cancel it (POST /api/runs/{previous.id}/cancel)."
            )
    run = new_run(function, "schedule", scheduled_for=clock.iso(now))
    created, _ = store.create(run, scheduled_event(function.name, cron.next_after(now)))
    state.ran_now(function.name, created.id)
    return created
