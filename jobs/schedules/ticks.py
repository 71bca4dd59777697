"""Creating scheduled runs: the tick fired by the scheduler, "run now" asked for through the API, and backfill.

All make a run with Netlify's scheduled event: body ``{"next_run": ISO}`` (the schedule's next fire time
after this one) plus the schedule's payload, headers ``x-nf-event: schedule`` and ``user-agent: Netlify
Clockwork``. A tick's run (trigger ``schedule``, or ``backfill``) carries the idempotency key
``schedule:<schedule>:<tick ISO>``, so however many schedulers fire the same tick, one run exists; and it
is recorded in the schedule's tick index (``Keys.schedule_ticks``) by the same script that creates it; the
index outlives the key's 24 hours, so a backfill weeks later still knows which ticks already ran.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .. import clock
from ..errors import Conflict, RunNotFound
from ..event import payload_event
from ..keys import text
from ..lifecycle import new_run
from ..runs import ACTIVE, Idempotency, Run
from ..site import Function
from ..site.cron import Cron
from ..store import RunStore, translate_errors
from ..writes import Fence
from .state import ScheduleState, ScheduleStatus

SCHEDULE_HEADERS = {"x-nf-event": "schedule", "user-agent": "Netlify Clockwork"}


def tick_key(schedule: str, tick: datetime) -> str:
    """The idempotency key of one tick: equal for every scheduler that fires it (and for a backfill of it)."""
    return f"schedule:{schedule}:{clock.iso(tick)}"


def scheduled_event(function: str, next_run: datetime, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Netlify's scheduled invocation: a POST whose body names the next fire time (and carries the payload)."""
    body = {"next_run": clock.iso(next_run), **(payload or {})}
    return payload_event(function, body, headers=SCHEDULE_HEADERS)


def existing_tick_runs(store: RunStore, schedule: str, function: str, ticks: Sequence[datetime]) -> list[str | None]:
    """For each tick, the id of the run already created for it (by any scheduler or backfill), if it still
    exists. Two round trips, whatever the number of ticks."""
    if not ticks:
        return []
    index = store.keys.schedule_ticks(schedule)
    with translate_errors("looking up ticks"):
        pipe = store.client.pipeline(transaction=False)
        for tick in ticks:
            pipe.get(store.keys.idempotency(function, "schedule", tick_key(schedule, tick)))
            ms = _ms(tick)
            pipe.zrangebyscore(index, ms, ms, start=0, num=1)
        replies = pipe.execute()
        found = [  # an idempotency key's value is "<run id> <request fingerprint>"
            text(key).partition(" ")[0] if key is not None else (text(indexed[0]) if indexed else None)
            for key, indexed in zip(replies[::2], replies[1::2], strict=True)
        ]
        candidates = [run_id for run_id in found if run_id is not None]
        alive = store.client.mget([store.keys.run(run_id) for run_id in candidates]) if candidates else []
    present = {run_id for run_id, raw in zip(candidates, alive, strict=True) if raw is not None}
    return [run_id if run_id in present else None for run_id in found]


def existing_tick_run(store: RunStore, schedule: str, function: str, tick: datetime) -> str | None:
    """The id of the run already created for ``tick``, if any."""
    return existing_tick_runs(store, schedule, function, [tick])[0]


def tick_run(
    function: Function,
    schedule: str,
    tick: datetime,
    next_run: datetime,
    payload: Mapping[str, Any] | None = None,
    *,
    trigger: str = "schedule",
) -> tuple[Run, dict[str, Any], Idempotency]:
    """The run, event and idempotency key for ``tick`` of ``schedule`` (not stored yet). Backfill shares the
    scheduler's surface, so a tick has one run whichever made it."""
    key = tick_key(schedule, tick)
    run = new_run(function, trigger, scheduled_for=clock.iso(tick), idempotency_key=key)
    run.schedule = schedule
    return run, scheduled_event(function.name, next_run, payload), Idempotency(key, "schedule")


def create_tick_run(
    store: RunStore,
    schedule: str,
    function: Function,
    tick: datetime,
    next_run: datetime,
    payload: Mapping[str, Any] | None = None,
    *,
    fence: Fence | None = None,
) -> tuple[Run, bool]:
    """The run for ``tick``; ``(existing run, False)`` if another scheduler already made it. With ``fence``,
    only while it holds (NotLeader otherwise)."""
    run, event, key = tick_run(function, schedule, tick, next_run, payload)
    return store.create(run, event, idempotency=key, fence=fence)


def active_previous(store: RunStore, status: ScheduleStatus) -> Run | None:
    """The schedule's newest run if it is still queued, running or retrying (what overlap looks at)."""
    if status.last_run is None:
        return None
    try:
        run = store.get(status.last_run)
    except RunNotFound:  # deleted by retention
        return None
    return run if run.status in ACTIVE else None


def run_now(
    store: RunStore,
    state: ScheduleState,
    schedule: str,
    function: Function,
    cron: Cron,
    now: datetime,
    payload: Mapping[str, Any] | None = None,
) -> Run:
    """A scheduled run at ``now``, outside the cron times and never deduplicated against a tick.

    ``overlap = "skip"`` is honoured (Conflict while the previous run is active), so "run now" cannot
    produce the overlap the schedule forbids; "queue" and "allow" create the run at once.
    """
    if function.overlap == "skip":
        previous = active_previous(store, state.get(schedule))
        if previous is not None:
            raise Conflict(
                f'Schedule {schedule!r} has overlap = "skip" and its run {previous.id} is still '
                f"{previous.status}; wait for it or cancel it (POST /api/runs/{previous.id}/cancel)."
            )
    run = new_run(function, "schedule", scheduled_for=clock.iso(now))
    run.schedule = schedule
    created, _ = store.create(run, scheduled_event(function.name, cron.next_after(now), payload))
    state.ran_now(schedule, created.id)
    return created


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
