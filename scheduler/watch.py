"""Schedules follow netlify.toml and the API while the scheduler runs, the way `netlify dev` follows edits.

The scheduler's site is a ``jobs.site.snapshot.SiteSnapshot``, the same rule every process uses: the
files are looked at every second and the site read again when they changed. Schedules created or deleted
through the API bump a counter in Redis, read once a second too. When either changed, the watcher compiles
the schedules again; if they differ from the ones in force (one added or removed, a new expression, zone,
payload, policy or limit), the engine switches to them. An edit that does not load (broken TOML, a bad
cron) is reported once and changes nothing: the scheduler keeps firing the schedules it has rather than
stopping over a typo.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from jobs.errors import ConfigError, StoreUnavailable
from jobs.schedules.registry import Schedules
from jobs.site import Site
from jobs.site.snapshot import INTERVAL_S, SiteSnapshot

from .schedules import Schedule, load_schedules

log = logging.getLogger("backburner.scheduler")

__all__ = ["INTERVAL_S", "ScheduleWatcher"]


def _describe(old: Sequence[Schedule], new: Sequence[Schedule]) -> str:
    before = {s.name: s for s in old}
    after = {s.name: s for s in new}
    parts = [f"added {name} ({after[name].spec.cron})" for name in sorted(after.keys() - before.keys())]
    parts += [f"removed {name}" for name in sorted(before.keys() - after.keys())]
    parts += [
        f"changed {name} ({after[name].spec.cron})"
        for name in sorted(before.keys() & after.keys())
        if before[name].key() != after[name].key()
    ]
    return ", ".join(parts)


class ScheduleWatcher:
    """Tells the scheduler when the schedules changed, on disk or through the API."""

    def __init__(
        self,
        sites: SiteSnapshot,
        schedules: Sequence[Schedule],
        *,
        registry: Schedules | None = None,
        test_schedules: Mapping[str, str] | None = None,
    ) -> None:
        """``sites`` is the scheduler's site snapshot; ``schedules`` are the ones in force; ``registry`` holds
        the API's schedules (None: netlify.toml's only)."""
        self.sites = sites
        self.registry = registry
        self.schedules = list(schedules)
        self.test_schedules = test_schedules
        self._site: Site = sites.site
        self._version: int | None = None if registry is not None else 0  # the first look reads the API's
        self._last_error: str | None = None

    def check(self) -> list[Schedule] | None:
        """The new schedules if the site or the API's schedules changed, and so did the compiled schedules."""
        site = self.sites.site
        try:
            version = self.registry.version() if self.registry is not None else 0
        except StoreUnavailable as error:
            self._report(f"cannot look for schedules created through the API: {error.message}", logging.WARNING)
            return None
        if site is self._site and version == self._version:
            return None
        try:
            api = self.registry.from_api() if self.registry is not None else []
        except StoreUnavailable as error:
            self._report(f"cannot read the schedules created through the API: {error.message}", logging.WARNING)
            return None
        self._site, self._version = site, version
        try:
            schedules = load_schedules(site, self.test_schedules, api)
        except ConfigError as error:
            self._report(f"the site changed but its schedules do not load; the ones in force stay: {error.message}")
            return None
        self._last_error = None
        if [s.key() for s in schedules] == [s.key() for s in self.schedules]:
            return None
        log.info("schedules changed: %s", _describe(self.schedules, schedules) or "limits or policies")
        self.schedules = schedules
        return schedules

    def _report(self, message: str, level: int = logging.ERROR) -> None:
        """Log a problem once (not every second while it lasts); Redis away is a warning, as everywhere else."""
        if message != self._last_error:
            log.log(level, "%s", message)
            self._last_error = message
