"""Recording an attempt's outcome the way the worker's recorder does (``Lifecycle.finish_many``)."""

from __future__ import annotations

from jobs.lifecycle import FinishedAttempt
from jobs.runs import Result, Run
from jobs.runtime import Runtime


def finish(runtime: Runtime, run_id: str, token: str, result: Result, *, claimed: Run | None = None) -> Run | None:
    """Record ``result`` for the attempt holding ``token``; None if the attempt was superseded."""
    run = claimed if claimed is not None else runtime.store.get(run_id)
    [recorded] = runtime.lifecycle.finish_many([FinishedAttempt(run, token, result)])
    return recorded
