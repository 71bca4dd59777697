"""Fan-out for batch transforms: split a source into slices, start a child run per slice, wait for them.

Design (the simplest that is correct): the parent run waits for its children inside its own attempt, polling
their records once a second, and merges when all have succeeded. Children are ordinary runs of a background
function, so every worker takes them, each under its own time limit and retries; they write their parts
straight into the parent's staging area, and the parent commits them all at once. If the parent could
outlive its own time limit it raises ``FanOutPending`` (a retryable failure) a few seconds before the limit;
its checkpoint holds the child ids, so the next attempt simply keeps waiting (give the parent enough
``retries`` to cover the children's duration). The parent holds one worker thread while it waits, so run
workers with at least two threads.

A child that failed for good fails the parent's attempt; the parent's retry (if it has one left) restarts
those slices as new child runs, which first delete whatever the failed child had staged.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import BackburnerError
from ..runs import Run, new_id

#: The key of a child run's payload that describes its slice.
SLICE_KEY = "backburner_batch"


class FanOutPending(BackburnerError):
    """The parent's attempt is about to reach its time limit with children still running; the retry waits on."""

    code = "fan_out_pending"


class FanOutFailed(BackburnerError):
    """Some child runs failed for good; a retry of the parent restarts their slices."""

    code = "fan_out_failed"


def plan(files: list[str], children: int, count: Callable[[str], int]) -> list[dict[str, Any]]:
    """Slices of the source: groups of whole files when there are several, else row ranges of the one file."""
    if children < 1:
        raise ValueError(f"children must be at least 1, got {children}")
    if len(files) > 1:
        groups = min(children, len(files))
        bounds = [len(files) * i // groups for i in range(groups + 1)]
        return [
            {"files": files[a:b], "start": 0, "stop": None, "rows": None}
            for a, b in zip(bounds, bounds[1:], strict=False)
        ]
    rows = count(files[0])
    size = max(1, math.ceil(rows / children))
    return [
        {"files": files, "start": start, "stop": min(start + size, rows), "rows": min(size, rows - start)}
        for start in range(0, rows, size)
    ] or [{"files": files, "start": 0, "stop": 0, "rows": 0}]


def refresh_failed(state: dict[str, Any], runs: list[Run | None]) -> bool:
    """Give slices whose child failed or was cancelled a new run id; True if any changed.

    A missing run keeps its id: it was never created (the attempt died between checkpoint and spawn), and
    spawning creates it now.
    """
    changed = False
    for index, run in enumerate(runs):
        if run is not None and run.status in ("failed", "cancelled"):
            state["children"][index] = new_id()
            changed = True
    return changed


def wait(context: Any, ids: list[str], total: int | None, *, poll_s: float, read: Callable[..., Any]) -> list[Any]:
    """Wait for every child run; returns their results, or raises FanOutFailed / FanOutPending.

    The parent's progress is the sum of its children's (rows read), so the dashboard shows one bar.
    """
    margin_ms = max(5000.0, 3000 * poll_s)
    while True:
        runs: list[Run | None] = read(context, ids)
        finished = [run for run in runs if run is not None and run.terminal]
        done = sum(_rows_done(run) for run in runs if run is not None)
        context.progress(done, total, f"{len(finished)} of {len(ids)} child runs finished")
        if len(finished) == len(ids):
            failed = [run for run in finished if run.status != "succeeded"]
            if failed:
                described = "; ".join(
                    f"{run.id} {run.status}" + (f" ({run.error.type}: {run.error.message})" if run.error else "")
                    for run in failed[:5]
                )
                raise FanOutFailed(
                    f"{len(failed)} of {len(ids)} child runs did not succeed: {described}. "
                    "A retry of this run starts their slices again."
                )
            return [run.result for run in finished]
        if any(run is None for run in runs):
            raise FanOutFailed("A child run disappeared (deleted by retention?); a retry starts its slice again.")
        if context.get_remaining_time_in_millis() < margin_ms:
            raise FanOutPending(
                f"{len(ids) - len(finished)} of {len(ids)} child runs still running at this attempt's time limit; "
                "the next attempt keeps waiting."
            )
        time.sleep(poll_s)


def _rows_done(run: Run) -> float:
    if run.status == "succeeded" and isinstance(run.result, dict):
        return float(run.result.get("rows_in", 0))
    return float(run.progress.done or 0)


def payload_of(event: Mapping[str, Any] | None) -> dict[str, Any]:
    """The event's JSON object body, or {} (no body, not JSON, not an object)."""
    try:
        body = json.loads((event or {}).get("body") or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def slice_of(event: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The slice a fan-out child was started for, or None for any other run."""
    piece = payload_of(event).get(SLICE_KEY)
    return piece if isinstance(piece, dict) else None
