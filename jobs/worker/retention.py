"""Retention: ``retention = "30d"`` removes a function's finished runs, records and artifacts, once they are
that old (counted from when they finished).

One worker at a time sweeps (a Redis lock that also spaces sweeps ``retention_interval`` apart). Run ids are
ULIDs, so the runs created before the cutoff are a lexicographic range of the function's index; only those
are read. Artifacts go first: if the store is down, the run is kept and retried next sweep, so no record
is deleted while its files stay behind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

from .. import clock
from ..artifacts.stores import run_prefix, store_for, store_url
from ..errors import BackburnerError
from ..keys import Keys, text
from ..runs import Run, id_floor, readable
from ..settings import Settings
from ..site import Function, Site

log = logging.getLogger("backburner.retention")

_PAGE = 200
#: The surface an idempotency key was used on, by the trigger of the run it made (a tick's run: the scheduler's).
_SURFACES = {"backfill": "schedule"}


class Retention:
    """Driven by the reaper's periodic loop; ``site`` gives the current site (whose functions say how long to keep)."""

    def __init__(
        self, settings: Settings, client: redis.Redis, keys: Keys, site: Callable[[], Site], owner: str
    ) -> None:
        self.settings = settings
        self.client = client
        self.keys = keys
        self.site = site
        self.owner = owner
        self._next = 0.0

    def maybe_sweep(self) -> int:
        """Sweep if this process's interval passed and no other worker swept within the interval."""
        now = time.monotonic()
        if now < self._next:
            return 0
        self._next = now + self.settings.retention_interval
        lock_ms = max(1, int(self.settings.retention_interval * 1000))
        if not self.client.set(self.keys.retention_lock, self.owner, nx=True, px=lock_ms):
            return 0
        return self.sweep()

    def sweep(self) -> int:
        """Remove every expired run of every function with a retention; return how many were removed."""
        try:
            site = self.site()
        except BackburnerError as exc:
            log.warning("retention: cannot read the site (%s); skipping this sweep", exc.message)
            return 0
        removed = 0
        for function in site.functions.values():
            if function.retention_s:
                removed += self.sweep_function(function, function.retention_s)
        return removed

    def sweep_function(self, function: Function, retention_s: float) -> int:
        """Remove ``function``'s runs that finished more than ``retention_s`` ago; return how many."""
        cutoff_ms = clock.now_ms() - int(retention_s * 1000)
        index, upper, lower, removed = self.keys.function_runs(function.name), f"({id_floor(cutoff_ms)}", "-", 0
        while True:
            ids = [text(i) for i in self.client.zrangebylex(index, lower, upper, start=0, num=_PAGE)]
            for run_id in ids:
                removed += self._expire(function, run_id, cutoff_ms)
            if len(ids) < _PAGE:
                return removed
            lower = f"({ids[-1]}"

    def _expire(self, function: Function, run_id: str, cutoff_ms: int) -> int:
        raw = self.client.get(self.keys.run(run_id))
        if raw is None:  # a dangling index entry
            self._forget(function.name, run_id)
            return 0
        run = readable(raw, run_id)
        if run is None or not run.terminal or run.finished_at is None:
            return 0
        if clock.parse_iso(run.finished_at).timestamp() * 1000 > cutoff_ms:
            return 0
        try:
            store_for(run.artifact_store or store_url(self.settings, function)).delete_prefix(run_prefix(run))
        except BackburnerError as exc:
            log.warning("retention: run %s kept for now: its artifacts could not be deleted: %s", run_id, exc.message)
            return 0
        self._forget(function.name, run_id, run)
        log.info("retention: removed run %s of %s (finished %s)", run_id, function.name, run.finished_at)
        return 1

    def _forget(self, function: str, run_id: str, run: Run | None = None) -> None:
        """Remove a run's keys and index entries; with its record, also what points at it by name: its
        schedule's tick index entry, and its idempotency key if that still names it (so the key, or the
        tick, can be used again rather than answer with a run that is gone)."""
        surface = _SURFACES.get(run.trigger, run.trigger) if run else ""
        idem = self.keys.idempotency(function, surface, run.idempotency_key) if run and run.idempotency_key else None
        with self.client.pipeline() as pipe:
            if idem is not None:
                pipe.watch(idem)
                if text(pipe.get(idem) or b"").partition(" ")[0] != run_id:
                    idem = None
                pipe.multi()
            if idem is not None:
                pipe.delete(idem)
            if run is not None and run.schedule:
                pipe.zrem(self.keys.schedule_ticks(run.schedule), run_id)
            pipe.delete(*self.keys.run_keys(run_id))
            pipe.zrem(self.keys.runs, run_id)
            pipe.zrem(self.keys.function_runs(function), run_id)
            pipe.zrem(self.keys.active, run_id)
            pipe.execute()
