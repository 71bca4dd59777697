"""Which due ticks fire: a pure function of the schedule's policy, where it stopped, and ``now``.

A tick at most ``grace`` seconds late is on time and always fires (a leader failover, a slow Redis).
Older ticks were *missed* (no scheduler was running) and the schedule's ``catchup`` decides:

    none     missed ticks are dropped (and recorded as missed)
    latest   the newest missed tick fires, older ones are dropped: one run for the gap (the default)
    all      every missed tick fires

Ticks older than ``catchup_window`` are never looked at, so a long outage cannot cause a burst beyond
the window (Inngest's "catch-up storm", Celery beat's runs at odd times).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jobs.site.cron import Cron


@dataclass(frozen=True)
class Plan:
    """Ticks to fire and ticks dropped as missed, oldest first; ``until`` is the new handled mark."""

    fire: list[datetime] = field(default_factory=list)
    missed: list[datetime] = field(default_factory=list)
    until: datetime | None = None


def plan_ticks(
    cron: Cron,
    *,
    catchup: str,
    window_s: float,
    grace_s: float,
    handled_until: datetime,
    now: datetime,
) -> Plan:
    """Sort the ticks in ``(handled_until, now]`` (clipped to the window) into fire and missed."""
    window_start = now - timedelta(seconds=window_s)
    start = max(handled_until, window_start)
    due = cron.between(start, now) if start < now else []
    if not due:
        # Nothing due up to now; move the mark only when it fell behind the window (keeps lookups short
        # without a Redis write at every wake-up).
        return Plan(until=now if handled_until < window_start else None)
    on_time = now - timedelta(seconds=grace_s)
    late = [tick for tick in due if tick < on_time]
    recent = due[len(late) :]
    if catchup == "all":
        fire, missed = late, []
    elif catchup == "latest":
        fire, missed = late[-1:], late[:-1]
    else:
        fire, missed = [], late
    return Plan(fire=fire + recent, missed=missed, until=due[-1])
