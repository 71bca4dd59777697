"""The one rule for when a process reads the site again, used by the API, workers, scheduler and webhooks.

A snapshot keeps the loaded site and a stamp of its files (size and modification time of netlify.toml
and of everything in the functions folder, two levels deep: a few ``stat`` calls). The stamp is
compared at most once per ``interval_s`` (1 s); when it changed, the site is read again. So any edit
(a new function, a changed ``time_limit``, a new webhook URL) applies to the next trigger in every
process within about a second. An edit that does not load is logged once and changes nothing: the
site in force stays, as the scheduler always did, rather than every process failing over a typo.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigError, FunctionNotFound
from . import load_site
from .model import CONFIG_FILE, Function, Site

log = logging.getLogger("backburner.site")

#: How often a snapshot looks at the files.
INTERVAL_S = 1.0

Stamp = tuple[tuple[str, int, int], ...]


def stamp(root: Path, functions_dir: Path, sources: Iterable[Path] = ()) -> Stamp:
    """Path, size and mtime of netlify.toml and the site's other ``sources`` (a base folder's netlify.toml,
    ``_redirects``; missing ones count once they appear), and of everything in the functions folder (two levels)."""
    found: list[tuple[str, int, int]] = []

    def add(path: str) -> None:
        try:
            info = os.stat(path)
        except OSError:
            return
        found.append((path, info.st_size, info.st_mtime_ns))

    add(str(root / CONFIG_FILE))
    for source in sources:
        add(str(source))
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


class SiteSnapshot:
    """The site at ``root`` as it is on disk, give or take ``interval_s``. Thread-safe."""

    def __init__(self, root: Path | str, *, site: Site | None = None, interval_s: float = INTERVAL_S) -> None:
        """Loads the site now (raising ConfigError if it does not load), unless ``site`` is given."""
        self.root = Path(root)
        self.interval_s = interval_s
        self._site = site if site is not None else load_site(self.root)
        self._stamp = stamp(self.root, self._site.functions_dir, self._site.sources)
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        #: Why the files on disk do not load, while they do not (the site in force is the last good one).
        self.error: ConfigError | None = None

    @property
    def site(self) -> Site:
        """The current site: read again first if the files changed since the last look."""
        if time.monotonic() - self._checked >= self.interval_s:
            with self._lock:
                if time.monotonic() - self._checked >= self.interval_s:
                    self._refresh()
        return self._site

    def function(self, name: str) -> Function:
        """The function called ``name``; raises FunctionNotFound (the API answers 404), saying so when the files
        on disk do not load (a function added with the edit that broke them is not served yet)."""
        try:
            return self.site.get(name)
        except FunctionNotFound as exc:
            if self.error is None:
                raise
            raise FunctionNotFound(name, note=self.stale_note()) from exc

    def stale_note(self) -> str:
        """What a 404 adds while the files on disk do not load: why, and that the last good site is served."""
        if self.error is None:
            return ""
        first = self.error.message.splitlines()[0]
        return f" The site's latest edit does not load ({first}), so the last version that did is served."

    def lookup(self, name: str) -> Function | None:
        """The function called ``name``, or None when the site no longer has it."""
        return self.site.functions.get(name)

    def _refresh(self) -> None:
        self._checked = time.monotonic()
        current = stamp(self.root, self._site.functions_dir, self._site.sources)
        if current == self._stamp:
            return
        self._stamp = current
        try:
            site = load_site(self.root)
        except ConfigError as error:
            if self.error is None or error.message != self.error.message:
                log.error("%s changed but does not load; the site in force stays: %s", self.root, error)
            self.error = error
            return
        if self.error is not None:
            log.info("%s loads again", self.root)
        self.error = None
        previous, self._site = self._site, site
        if (site.functions_dir, site.sources) != (previous.functions_dir, previous.sources):
            self._stamp = stamp(self.root, site.functions_dir, site.sources)  # the folders moved: watch the new ones
