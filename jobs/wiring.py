"""How a process is put together: the runtime plus the hooks every deployment gets.

Kept apart from ``jobs.runtime`` so the core (runtime, lifecycle, store) never imports what reacts to
runs: webhook routing (``jobs.delivery``), the metrics counters (``jobs.metrics``) and the notes on attempts
that ended without a word (``jobs.execution.endings``) plug in here.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from .delivery.destinations import DestinationsHook
from .execution.endings import EndingNotes
from .hooks import RunHook
from .keys import Keys
from .metrics import MetricsHook
from .runtime import Runtime
from .settings import Settings
from .site import Function, Site


def default_hooks(
    settings: Settings, client: redis.Redis, functions: Callable[[str], Function | None]
) -> list[RunHook]:
    """Webhook routing (``functions`` looks up a run's function in the current site), the metrics counters, and
    why an attempt that could not say so ended, in its run's log."""
    keys = Keys(settings.namespace)
    return [DestinationsHook(keys, functions), MetricsHook(keys, client), EndingNotes(keys)]


def open_runtime(settings: Settings, *, site: Site | None = None) -> Runtime:
    """A Runtime with the default hooks, as the API, workers and schedulers use it."""
    runtime = Runtime.open(settings, site=site)
    runtime.use(*default_hooks(settings, runtime.client, runtime.sites.lookup))
    return runtime
