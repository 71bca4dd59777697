"""Backfill: one run per tick of a schedule in ``[start, end)``, as that tick would have run.

Each run gets the tick's ``scheduled_for``, the tick's body (``{"next_run": the following tick}`` plus the
schedule's payload), ``trigger = "backfill"`` and the tick's idempotency key, so a tick that already has a
run (fired by a scheduler, or backfilled before) is skipped and listed, and a backfill racing a scheduler
or another backfill still makes one run per tick. Backfill ignores pause and overlap: it is an explicit
request for those ticks; the function's ``concurrency`` still paces how many run at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .. import clock
from ..errors import InvalidInput
from ..runs import Idempotency, Run
from ..site import Function
from ..site.cron import Cron
from ..site.model import ScheduleSpec
from ..store import RunStore
from .ticks import existing_tick_runs, tick_run

#: The most ticks one backfill call may cover (a bigger range is split by the caller).
MAX_TICKS = 1000


@dataclass
class Backfilled:
    runs: list[Run] = field(default_factory=list)
    skipped: list[datetime] = field(default_factory=list)


def ticks_in(cron: Cron, start: datetime, end: datetime, limit: int = MAX_TICKS) -> list[datetime]:
    """The ticks ``t`` with ``start <= t < end``; InvalidInput when there are more than ``limit``."""
    found: list[datetime] = []
    for tick in cron.iter_after(start - timedelta(microseconds=1)):
        if tick >= end:
            break
        if len(found) == limit:
            raise InvalidInput(
                f"[{clock.iso(start)}, {clock.iso(end)}) holds more than {limit:,} ticks of {cron.expression!r}; "
                "backfill at most 1,000 ticks per call (split the range)."
            )
        found.append(tick)
    return found


def backfill(
    store: RunStore, spec: ScheduleSpec, function: Function, cron: Cron, start: datetime, end: datetime, now: datetime
) -> Backfilled:
    """Create the missing runs of ``spec``'s ticks in ``[start, end)``; raises InvalidInput for a bad range."""
    if end <= start:
        raise InvalidInput(f"'to' ({clock.iso(end)}) must be later than 'from' ({clock.iso(start)}).")
    if start.year < 1970 or end.year > 9998:
        raise InvalidInput("'from' and 'to' must be between 1970 and 9998.")
    ticks = ticks_in(cron, start, end)
    future = [tick for tick in ticks if tick > now]
    if future:
        raise InvalidInput(
            f"{clock.iso(future[0])} is a tick still to come; backfill covers ticks that have passed "
            f"(set 'to' to {clock.iso(now)} or earlier), the scheduler fires the rest."
        )
    done = Backfilled()
    pending: list[tuple[Run, dict[str, object], Idempotency]] = []
    for tick, existing in zip(ticks, existing_tick_runs(store, spec.name, function.name, ticks), strict=True):
        if existing is not None:
            done.skipped.append(tick)
        else:
            pending.append(tick_run(function, spec.name, tick, cron.next_after(tick), spec.payload, trigger="backfill"))
    if pending:
        ids = store.create_many([(run, event) for run, event, _ in pending], idempotency=[key for _, _, key in pending])
        for (run, _, _), run_id in zip(pending, ids, strict=True):
            if run_id == run.id:
                done.runs.append(run)
            else:  # a scheduler or another backfill made this tick's run meanwhile
                done.skipped.append(clock.parse_iso(run.scheduled_for or ""))
    done.skipped.sort()
    return done
