"""Schedules follow netlify.toml while the scheduler runs, the way `netlify dev` follows edits.

The scheduler's site is a ``jobs.site.snapshot.SiteSnapshot``, the same rule every process uses: the
files are looked at every second and the site read again when they changed. Each time the snapshot
holds a new site, the watcher compiles its schedules; if they differ from the ones in force (one added
or removed, a new expression, zone, policy or limit), the engine switches to them. An edit that does
not load (broken TOML, a bad cron) is reported once and changes nothing: the scheduler keeps firing the
schedules it has rather than stopping over a typo.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from jobs.errors import ConfigError
from jobs.site import Site
from jobs.site.snapshot import INTERVAL_S, SiteSnapshot

from .schedules import Schedule, load_schedules

log = logging.getLogger("backburner.scheduler")

__all__ = ["INTERVAL_S", "ScheduleWatcher"]


def _describe(old: Sequence[Schedule], new: Sequence[Schedule]) -> str:
    before = {s.name: s for s in old}
    after = {s.name: s for s in new}
    parts = [f"added {name} ({after[name].function.schedule})" for name in sorted(after.keys() - before.keys())]
    parts += [f"removed {name}" for name in sorted(before.keys() - after.keys())]
    parts += [
        f"changed {name} ({after[name].function.schedule})"
        for name in sorted(before.keys() & after.keys())
        if before[name].function != after[name].function
    ]
    return ", ".join(parts)


class ScheduleWatcher:
    """Tells the scheduler when the site's schedules changed on disk."""

    def __init__(
        self, sites: SiteSnapshot, schedules: Sequence[Schedule], *, test_schedules: Mapping[str, str] | None = None
    ) -> None:
        """``sites`` is the scheduler's site snapshot; ``schedules`` are the ones in force."""
        self.sites = sites
        self.schedules = list(schedules)
        self.test_schedules = test_schedules
        self._site: Site = sites.site
        self._last_error: str | None = None

    def check(self) -> list[Schedule] | None:
        """The new schedules if the site changed and so did the schedules; otherwise None."""
        site = self.sites.site
        if site is self._site:
            return None
        self._site = site
        try:
            schedules = load_schedules(site, self.test_schedules)
        except ConfigError as error:
            if error.message != self._last_error:
                log.error("the site changed but its schedules do not load; the ones in force stay: %s", error.message)
                self._last_error = error.message
            return None
        self._last_error = None
        if [(s.function, s.cron.expression) for s in schedules] == [
            (s.function, s.cron.expression) for s in self.schedules
        ]:
            return None
        log.info("schedules changed: %s", _describe(self.schedules, schedules) or "limits or policies")
        self.schedules = schedules
        return schedules
