"""Delayed runs: accepted now, started at their ``run_at`` (``?delay=90s`` or ``?run_at=ISO``, up to a year ahead).

A delayed run is a run record in status ``delayed`` plus an entry in one sorted set of due times
(``Keys.delayed``), written together by the script that creates runs (which also nudges the workers'
timers), and no message yet. Every worker's timer (``jobs.worker.timer``) sleeps until the set's head is
due: a due run becomes ``queued`` with its message in one compare-and-set (``promote``), so it starts
within milliseconds of its time, and timers that wake together cannot queue it twice (the first write
wins; the others see it is no longer delayed). Nothing is held in a process's memory: a run survives
restarts of everything, and the reaper promotes one whose entry went missing.
Cancelling a delayed run removes it from the set in the same write. The set is a sorted index, so a
hundred thousand runs waiting for next year cost nothing to the ones due now.

Dramatiq's own delay queue was not used: its consumers fetch delayed messages and hold them in memory until
their time, so far-future runs would fill their prefetch, and a run's time would depend on a consumer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from . import clock
from .errors import InvalidInput
from .keys import text
from .runs import Run, new_token
from .site.durations import parse_duration
from .store import RunStore, SkipWrite, translate_errors
from .writes import Writes

#: The furthest ahead a run may be delayed.
MAX_AHEAD = timedelta(days=365)
#: Due runs promoted per round trip (a sweep repeats while it finds full batches).
BATCH = 200


def due_time(delay: str | None, run_at: str | None, now: datetime) -> datetime | None:
    """When a run asked for with ``?delay=`` or ``?run_at=`` should start (None: at once).

    ``delay`` is seconds or a duration (``90s``, ``15m``, ``2h``, ``1d``); ``run_at`` an ISO 8601 time (UTC
    without a zone; one already past means at once). Raises InvalidInput (400) saying what is wrong.
    """
    if delay is not None and run_at is not None:
        raise InvalidInput("Give either delay or run_at, not both.")
    if delay is not None:
        try:
            seconds = parse_duration(delay)
        except ValueError as error:
            raise InvalidInput(f"delay: {error}.") from None
        if not math.isfinite(seconds) or seconds > MAX_AHEAD.total_seconds():
            raise InvalidInput(f"delay: {delay!r} is more than a year; delay a run by at most 365d.")
        return now + timedelta(seconds=seconds)
    if run_at is not None:
        try:
            moment = datetime.fromisoformat(run_at.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"run_at: {run_at!r} is not an ISO 8601 time, e.g. 2026-03-01T06:00:00Z.") from None
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
        if moment - now > MAX_AHEAD:
            raise InvalidInput(f"run_at: {run_at!r} is more than a year ahead; a run may wait at most 365 days.")
        return moment
    return None


def delay(run: Run, due: datetime) -> Run:
    """Make a new run ``delayed`` until ``due`` (``RunStore.create`` then stores it without a message)."""
    run.status = "delayed"
    run.run_at = clock.iso(due)
    return run


def promote(store: RunStore) -> Callable[[Run, Writes], Run]:
    """The mutation that turns a delayed run into a queued one, with its message, in the same write."""

    def mutate(run: Run, pipe: Writes) -> Run:
        if run.status != "delayed":
            raise SkipWrite
        run.status = "queued"
        run.token = new_token()
        store.dispatch(pipe, run)
        return run

    return mutate


def due_ids(store: RunStore, now_ms: int, limit: int = BATCH) -> list[str]:
    with translate_errors("looking for due delayed runs"):
        return [text(i) for i in store.client.zrangebyscore(store.keys.delayed, "-inf", now_ms, start=0, num=limit)]


def promote_due(store: RunStore, now_ms: int | None = None) -> list[Run]:
    """Queue every delayed run due by ``now_ms``; returns those this call promoted."""
    promoted: list[Run] = []
    previous: list[str] = []
    while True:
        ids = due_ids(store, clock.now_ms() if now_ms is None else now_ms)
        if not ids or ids == previous:  # the same full batch again: runs that cannot be promoted; stop
            return promoted
        promoted += promote_ids(store, ids)
        if len(ids) < BATCH:
            return promoted
        previous = ids


def promote_ids(store: RunStore, ids: Sequence[str]) -> list[Run]:
    """Promote these delayed runs (two round trips for a batch); entries whose run is gone or no longer delayed
    are dropped from the set."""
    with translate_errors("reading delayed runs"):
        raws = store.client.mget([store.keys.run(run_id) for run_id in ids])
    mutate = promote(store)
    changes = [(run_id, mutate, text(raw), ()) for run_id, raw in zip(ids, raws, strict=True) if raw is not None]
    answers = store.update_many(changes)
    promoted = [answer for answer in answers if isinstance(answer, Run)]
    stale = [run_id for run_id, raw in zip(ids, raws, strict=True) if raw is None]
    stale += [change[0] for change, answer in zip(changes, answers, strict=True) if isinstance(answer, SkipWrite)]
    if stale:
        with translate_errors("dropping stale delayed entries"):
            store.client.zrem(store.keys.delayed, *stale)
    return promoted
