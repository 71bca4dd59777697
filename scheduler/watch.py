"""Schedules follow netlify.toml while the scheduler runs, the way `netlify dev` follows edits.

Every few seconds the scheduler looks at netlify.toml and the function files (their sizes and times,
which costs a few ``stat`` calls). When one changed, it reads the site again; if the schedules differ
from the ones in force (one added or removed, a new expression, zone, policy or limit), the engine
switches to them. An edit that does not load (broken TOML, a bad cron) is reported once and changes
nothing: the scheduler keeps firing the schedules it has rather than stopping over a typo.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from jobs.errors import ConfigError
from jobs.site import CONFIG_FILE, Site, load_site

from .schedules import Schedule, load_schedules

log = logging.getLogger("backburner.scheduler")

#: How often the files are looked at.
INTERVAL_S = 2.0

Stamp = tuple[tuple[str, int, int], ...]


def _stamp(root: Path, functions_dir: Path) -> Stamp:
    """Path, size and mtime of netlify.toml and of everything in the functions folder (two levels)."""
    found: list[tuple[str, int, int]] = []

    def add(path: str) -> None:
        try:
            info = os.stat(path)
        except OSError:
            return
        found.append((path, info.st_size, info.st_mtime_ns))

    add(str(root / CONFIG_FILE))
    folders = [str(functions_dir)]
    for depth in range(2):
        deeper: list[str] = []
        for folder in folders:
            add(folder)
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir(follow_symlinks=False) and depth == 0:
                    deeper.append(entry.path)
                elif entry.is_file():
                    add(entry.path)
        folders = deeper
    return tuple(sorted(found))


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
        self, site: Site, schedules: Sequence[Schedule], *, test_schedules: Mapping[str, str] | None = None
    ) -> None:
        """``site`` and ``schedules`` are what the scheduler started with."""
        self.root = site.root
        self.schedules = list(schedules)
        self.test_schedules = test_schedules
        self._functions_dir = site.functions_dir
        self._stamp = _stamp(self.root, self._functions_dir)
        self._last_error: str | None = None

    def check(self) -> list[Schedule] | None:
        """The new schedules if files changed and so did the schedules; otherwise None."""
        stamp = _stamp(self.root, self._functions_dir)
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            site = load_site(self.root)
            schedules = load_schedules(site, self.test_schedules)
        except ConfigError as error:
            if error.message != self._last_error:
                log.error("the site changed but does not load; the schedules in force stay: %s", error.message)
                self._last_error = error.message
            return None
        self._last_error = None
        if site.functions_dir != self._functions_dir:
            self._functions_dir = site.functions_dir
            self._stamp = _stamp(self.root, site.functions_dir)
        if [(s.function, s.cron.expression) for s in schedules] == [
            (s.function, s.cron.expression) for s in self.schedules
        ]:
            return None
        log.info("schedules changed: %s", _describe(self.schedules, schedules) or "limits or policies")
        self.schedules = schedules
        return schedules
