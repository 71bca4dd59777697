"""The extension point for code that reacts to runs (webhook routing, metrics), like Dramatiq's middleware.

``jobs.lifecycle`` calls each hook at fixed points of a run's life; see the methods for which ones
run inside the run's own atomic write.
"""

from __future__ import annotations

from .runs import Result, Run
from .writes import Writes


class RunHook:
    """Base class for code that reacts to runs; override only what you need (like Dramatiq middleware)."""

    def on_terminal(self, run: Run, pipe: Writes) -> None:
        """Called once, inside the transaction that makes ``run`` succeeded, failed or cancelled."""

    def on_attempt(self, run: Run, result: Result, pipe: Writes) -> None:
        """Called inside the transaction that records a finished attempt (``run`` shows what comes next:
        retrying, succeeded, ...); writes queued on ``pipe`` commit with it. May run again if the
        transaction is retried, so keep side effects on ``pipe``."""

    def after_attempt(self, run: Run, result: Result) -> None:
        """Called once per recorded attempt, after it committed (for in-process work such as counters)."""
