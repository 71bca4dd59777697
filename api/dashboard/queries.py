"""What the dashboard pages show, read from Redis with a bounded number of round trips.

Run ids are ULIDs, so "the last 24 hours" is a lexicographic range of the run index: the overview reads at
most ``OVERVIEW_SAMPLE`` records of that range (in batches of one MGET), parses them with ``json`` only
(no model validation), and says so on the page when it had to stop early. Nothing here scans a whole index.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobs import clock
from jobs.keys import text
from jobs.runs import STATUSES, id_floor_at, report_unreadable
from jobs.runtime import Runtime

#: Newest runs of the window the overview reads at most.
OVERVIEW_SAMPLE = 5000
#: Recent outcomes shown per function on the Functions page.
RECENT_PER_FUNCTION = 12
_BATCH = 500


def records(runtime: Runtime, ids: list[str]) -> Iterator[dict[str, Any]]:
    """Run records as plain dicts, in ``ids`` order, skipping any that retention removed or that cannot be read
    (another version's, or corrupted: logged once, never an error page)."""
    store = runtime.store
    for i in range(0, len(ids), _BATCH):
        batch = ids[i : i + _BATCH]
        for run_id, raw in zip(batch, store.client.mget([store.keys.run(run_id) for run_id in batch]), strict=True):
            record = _record(run_id, raw) if raw is not None else None
            if record is not None:
                yield record


def _record(run_id: str, raw: bytes | str) -> dict[str, Any] | None:
    """The fields the pages use, checked cheaply (the overview reads thousands of records)."""
    try:
        record = json.loads(raw)
        if not isinstance(record, dict) or record.get("status") not in STATUSES:
            raise ValueError("no known status")
        for name in ("id", "function", "created_at"):
            if not isinstance(record.get(name), str):
                raise ValueError(f"no {name}")
        clock.parse_iso(record["created_at"])
        for attempt in record.get("attempts") or ():
            for name in ("started_at", "finished_at"):
                if attempt.get(name) is not None:
                    clock.parse_iso(attempt[name])
    except (ValueError, TypeError, AttributeError) as exc:
        report_unreadable(run_id, str(exc) or type(exc).__name__)
        return None
    return record


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return max(0.0, (clock.parse_iso(end) - clock.parse_iso(start)).total_seconds())


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[max(0, math.ceil(q * len(values)) - 1)]


@dataclass
class Durations:
    function: str
    count: int
    p50: float
    p90: float
    p99: float
    max: float


@dataclass
class Overview:
    start: datetime
    hours: list[tuple[datetime, Counter[str]]]
    totals: Counter[str]
    durations: list[Durations]
    failures: list[dict[str, Any]]
    sampled: int
    capped: bool
    active: Counter[str] = field(default_factory=Counter)
    workers: int = 0
    ready: int = 0
    delayed: int = 0
    outbox: int = 0


def _bucket(status: str) -> str:
    return status if status in ("succeeded", "failed", "cancelled") else "active"


def overview(runtime: Runtime, now: datetime, hours: int = 24) -> Overview:
    """Runs per hour by outcome, attempt-duration percentiles per function, totals and the newest failures."""
    start = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    store = runtime.store
    ids = [
        text(i)
        for i in store.client.zrevrangebylex(
            store.keys.runs, "+", f"[{id_floor_at(start)}", start=0, num=OVERVIEW_SAMPLE
        )
    ]
    per_hour: dict[datetime, Counter[str]] = {start + timedelta(hours=h): Counter() for h in range(hours)}
    totals: Counter[str] = Counter()
    durations: dict[str, list[float]] = defaultdict(list)
    failures: list[dict[str, Any]] = []
    for record in records(runtime, ids):
        outcome = _bucket(record["status"])
        totals[outcome] += 1
        hour = clock.parse_iso(record["created_at"]).replace(minute=0, second=0, microsecond=0)
        if hour in per_hour:
            per_hour[hour][outcome] += 1
        for attempt in record.get("attempts") or ():
            seconds = seconds_between(attempt.get("started_at"), attempt.get("finished_at"))
            if seconds is not None:
                durations[record["function"]].append(seconds)
        if record["status"] == "failed" and len(failures) < 6:
            failures.append(record)
    stats = []
    for name, values in sorted(durations.items()):
        values.sort()
        stats.append(
            Durations(
                name,
                len(values),
                percentile(values, 0.5),
                percentile(values, 0.9),
                percentile(values, 0.99),
                values[-1],
            )
        )
    result = Overview(start, sorted(per_hour.items()), totals, stats, failures, len(ids), len(ids) >= OVERVIEW_SAMPLE)
    _live(runtime, result)
    return result


def _live(runtime: Runtime, view: Overview) -> None:
    """Right-now numbers: active runs by status, workers, queue depth, webhook backlog."""
    store, settings = runtime.store, runtime.settings
    for record in records(runtime, store.active_ids()):
        view.active[record["status"]] += 1
    pipe = store.client.pipeline(transaction=False)
    pipe.zcount(store.keys.workers, clock.now_ms() - int(settings.worker_timeout * 1000), "+inf")
    pipe.llen(runtime.broker.queue_keys()[0])
    pipe.zcard(runtime.broker.queue_keys(delayed=True)[0])
    pipe.zcard(store.keys.outbox_due)
    view.workers, view.ready, view.delayed, view.outbox = (int(v) for v in pipe.execute())


def recent_by_function(
    runtime: Runtime, names: Iterable[str], count: int = RECENT_PER_FUNCTION
) -> dict[str, list[dict[str, Any]]]:
    """The newest ``count`` runs of each function (newest first), in two round trips."""
    names = list(names)
    store = runtime.store
    pipe = store.client.pipeline(transaction=False)
    for name in names:
        pipe.zrevrangebylex(store.keys.function_runs(name), "+", "-", start=0, num=count)
    id_lists = [[text(i) for i in ids] for ids in pipe.execute()]
    by_id = {record["id"]: record for record in records(runtime, [i for ids in id_lists for i in ids])}
    return {name: [by_id[i] for i in ids if i in by_id] for name, ids in zip(names, id_lists, strict=True)}
