"""The site model: a loaded netlify.toml and functions directory, as records (``jobs.site.loader`` builds them).

The rules are Netlify's (DESIGN.md section 3): which names are background functions, and the limits
Netlify gives each kind unless configured.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import FunctionNotFound
from ..runs import Trigger
from .routes import RouteTable

SYNC_TIME_LIMIT_S = 60.0
BACKGROUND_TIME_LIMIT_S = 900.0
SCHEDULED_TIME_LIMIT_S = 30.0
SYNC_BODY_LIMIT = 6 * 1024 * 1024
BACKGROUND_BODY_LIMIT = 256 * 1024
DEFAULT_RETRY_DELAYS_S = (60.0, 120.0)
DEFAULT_CATCHUP_WINDOW_S = 3600.0
#: An attempt's memory (its whole process tree) and the JSON of a run's result, unless configured.
DEFAULT_MEMORY_LIMIT = 2 << 30
DEFAULT_MAX_RESULT = 1 << 20

CONFIG_FILE = "netlify.toml"
DEFAULT_FUNCTIONS_DIR = "netlify/functions"  # relative to [build] base (jobs.site.paths)
BACKGROUND_SUFFIX = "-background"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
#: A retry schedule is one list, and so are a function's paths: inline config replaces them whole.
_REPLACED = frozenset({"retries", "path"})


@dataclass(frozen=True)
class Limits:
    """What one attempt of a function may use, for the trigger that started it."""

    time_limit_s: float
    retry_delays_s: tuple[float, ...]
    body_limit: int


@dataclass(frozen=True)
class Function:
    """One function of the site with its merged configuration (TOML tables, then inline config)."""

    name: str
    path: Path
    background: bool
    schedule: str | None
    timezone: str
    time_limit_s: float | None
    retry_delays_s: tuple[float, ...] | None
    overlap: str
    catchup: str
    catchup_window_s: float
    concurrency: int | None
    on_success: tuple[str, ...]
    on_failure: tuple[str, ...]
    artifacts: str | None
    retention_s: float | None
    config: Mapping[str, Any] = field(hash=False)
    #: The function's own paths (``path`` in its inline config or ``[functions."name"]``).
    routes: tuple[str, ...] = ()
    #: Bytes an attempt may use, all its processes together (``memory_limit``).
    memory_limit: int = DEFAULT_MEMORY_LIMIT
    #: Bytes of JSON a run's result may take (``max_result``).
    max_result: int = DEFAULT_MAX_RESULT
    #: Variables set for the handler (``environment``), over the worker's own.
    environment: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def kind(self) -> Literal["sync", "background"]:
        """Netlify's two invocation modes: answer with the response, or 202 and run later."""
        return "background" if self.background else "sync"

    def limits(self, trigger: Trigger) -> Limits:
        """Netlify's defaults for the kind (and for scheduled sync runs), unless configured."""
        if self.background:
            retries: tuple[float, ...]
            time_limit, retries, body = BACKGROUND_TIME_LIMIT_S, DEFAULT_RETRY_DELAYS_S, BACKGROUND_BODY_LIMIT
        elif trigger in ("schedule", "backfill"):
            time_limit, retries, body = SCHEDULED_TIME_LIMIT_S, (), SYNC_BODY_LIMIT
        else:
            time_limit, retries, body = SYNC_TIME_LIMIT_S, (), SYNC_BODY_LIMIT
        return Limits(
            time_limit_s=time_limit if self.time_limit_s is None else self.time_limit_s,
            retry_delays_s=retries if self.retry_delays_s is None else self.retry_delays_s,
            body_limit=body,
        )


@dataclass(frozen=True)
class ScheduleSpec:
    """One schedule: when to run which function, with which payload (merged into the ``{"next_run"}`` body).

    From netlify.toml (a function's own ``schedule``, named after the function, or a
    ``[[backburner.schedules]]`` entry) or created through the API and kept in Redis (``source = "api"``).
    The function's ``overlap``, ``catchup`` and limits apply to all of its schedules.
    """

    name: str
    function: str
    cron: str
    timezone: str = "UTC"
    payload: Mapping[str, Any] = field(default_factory=dict, hash=False)
    source: Literal["file", "api"] = "file"
    revision: str = ""  # an API schedule's creation: a schedule deleted and created anew under its name is another


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the site, located as precisely as we can (file relative to the root)."""

    file: str
    line: int | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return ": ".join(part for part in (where, self.key, self.message) if part)


@dataclass(frozen=True)
class Site:
    """A loaded site: its root, config file, functions directory and functions by name."""

    root: Path
    config_file: Path | None
    functions_dir: Path
    functions: Mapping[str, Function] = field(hash=False)
    settings: Mapping[str, Any] = field(hash=False)
    #: Rewrites onto functions and functions' own paths, compiled once (``jobs.site.routes``).
    routes: RouteTable = field(default_factory=RouteTable, hash=False)
    #: Files besides the functions folder whose edits change the site (present or not yet).
    sources: tuple[Path, ...] = ()
    #: The ``[[backburner.schedules]]`` entries (functions' own schedules are in ``schedules``).
    declared: tuple[ScheduleSpec, ...] = ()

    @property
    def schedules(self) -> list[ScheduleSpec]:
        """Every schedule netlify.toml defines: each function's own (named after it), then the declared ones."""
        own = [ScheduleSpec(f.name, f.name, f.schedule, f.timezone) for f in self.functions.values() if f.schedule]
        return own + list(self.declared)

    def get(self, name: str) -> Function:
        """The function called ``name``; raises ``FunctionNotFound`` so the API can answer 404."""
        try:
            return self.functions[name]
        except KeyError:
            raise FunctionNotFound(name) from None
