"""Replaying runs: one run again (same payload, or a new one), or every failed run that matches a filter, once.

A replay is a new run (``trigger = "replay"``, ``replay_of`` the original) with the original's limits; the
original records its newest replay in ``replayed_by``. A bulk replay leaves out runs that were replayed
before, so running it twice (or clicking the dashboard's button twice) replays each failure once; its
replays carry the idempotency key ``replay:<original id>``, so two bulk replays racing each other still
make one replay per run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from . import clock
from .errors import InvalidInput, RunNotFound
from .runs import Idempotency, Run, id_floor_at, new_id
from .store import RunStore, SkipWrite
from .writes import Writes

#: Statuses a bulk replay may select: runs that ended without succeeding.
REPLAYABLE = ("failed", "cancelled")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: Runs of the status a bulk replay looks through at most (newest first) to find its matches.
SCAN_LIMIT = 10_000


def replay(store: RunStore, run_id: str, event: dict[str, Any] | None = None, *, key: str | None = None) -> Run:
    """A new run of the same function with the same event, or with ``event`` (an edited payload)."""
    original = store.get(run_id)
    if event is None:
        event = store.event(run_id)
    run = Run(
        id=new_id(),
        function=original.function,
        trigger="replay",
        created_at=clock.iso(clock.now()),
        max_attempts=original.max_attempts,
        time_limit_s=original.time_limit_s,
        retry_delays_s=original.retry_delays_s,
        replay_of=original.id,
        idempotency_key=key,
    )
    created, _ = store.create(run, event, idempotency=Idempotency(key, "replay") if key else None)

    def mark(current: Run, pipe: Writes) -> None:
        if current.replayed_by == created.id:
            raise SkipWrite
        current.replayed_by = created.id

    with contextlib.suppress(SkipWrite, RunNotFound):  # RunNotFound: retention removed it meanwhile
        store.update(original.id, mark, known=original)
    return created


def matching(
    store: RunStore,
    *,
    function: str | None = None,
    status: str = "failed",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[Run]:
    """The runs a bulk replay with these filters would replay: newest first, never replayed before."""
    if status not in REPLAYABLE:
        raise InvalidInput(f"status must be one of {', '.join(REPLAYABLE)} (the runs to replay), not {status!r}.")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, not {limit}.")
    found: list[Run] = []
    for run in _scan(store, function, status, since, until):
        if run.replayed_by is None:
            found.append(run)
            if len(found) == limit:
                break
    return found


def replay_matching(store: RunStore, **filters: Any) -> list[tuple[str, Run]]:
    """Replay every run ``matching(**filters)`` once: ``[(original id, new run)]``, newest original first."""
    return [(run.id, replay(store, run.id, key=f"replay:{run.id}")) for run in matching(store, **filters)]


def _scan(
    store: RunStore, function: str | None, status: str, since: datetime | None, until: datetime | None
) -> Iterator[Run]:
    cursor = id_floor_at(until) if until else None
    lower = id_floor_at(since) if since else None
    seen = 0
    while seen < SCAN_LIMIT:
        page, cursor = store.runs(function=function, status=status, limit=200, cursor=cursor, since=lower)
        yield from page
        seen += len(page)
        if cursor is None or not page:
            return
