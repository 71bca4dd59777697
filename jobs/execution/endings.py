"""Why an attempt ended, in its run's log, when its child could not write it there itself.

A handler's exception reaches the log from the child (``jobs.execution.child``). An attempt killed at its time
or memory limit, one whose process crashed, and one cancelled end without a word from the child; the worker's
record of the attempt adds the line, in the same atomic write, as a Lambda's log says "Task timed out". The
reaper adds one for an attempt whose worker was lost (``jobs.worker.reaper``).
"""

from __future__ import annotations

import time
from typing import Any

from ..hooks import RunHook
from ..keys import Keys
from ..runs import Result, Run
from ..writes import Writes
from .output import LOG_LINES_CAP, entries

#: The attempts the child could not tell about.
SILENT_ENDS = frozenset({"timeout", "crash", "cancelled"})


class EndingNotes(RunHook):
    """Writes the line that says why such an attempt ended (its error's type and message) to the run's log."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys

    def on_attempt(self, run: Run, result: Result, pipe: Writes) -> None:
        if result.kind not in SILENT_ENDS or not run.attempts:
            return
        error = result.error or {}
        line = f"{error.get('type', 'Error')}: {error.get('message', 'the attempt ended')}"
        note(pipe, self.keys, run.id, run.attempts[-1].n, line)


def note(pipe: Any, keys: Keys, run_id: str, attempt: int, line: str) -> None:
    """Queue on ``pipe`` (a run write's, or a MULTI) one ERROR line at the end of the run's log."""
    key = keys.logs(run_id)
    pipe.rpush(key, *entries(time.time(), attempt, "log", "ERROR", [line]))
    pipe.ltrim(key, -LOG_LINES_CAP, -1)
    pipe.incrby(keys.log_count(run_id), 1)  # the count jobs.log_tail numbers lines by
