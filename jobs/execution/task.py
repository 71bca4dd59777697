"""What a child process needs for one attempt: plain data that pickles cheaply across the pipe.

``AttemptContext`` is built in one place (``attempt_context``) for worker attempts and synchronous
invocations alike, so the handler's ``context`` means the same thing on both paths.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..runs import Trigger


@dataclass(frozen=True)
class AttemptContext:
    """The facts the handler's ``context`` is made of (``jobs.execution.context.Context``)."""

    function: str
    run_id: str
    #: Wall-clock deadline (epoch seconds): the child's ``get_remaining_time_in_millis`` counts down to it.
    deadline: float
    attempt: int = 1
    trigger: Trigger = "http"
    idempotency_key: str | None = None
    scheduled_for: str | None = None
    namespace: str = "backburner"
    #: Set for persisted runs only: logs, progress and checkpoints go to this Redis.
    redis_url: str | None = None
    #: Where ``context.artifacts`` writes; None for synchronous invocations (they have no run to keep files).
    artifacts_url: str | None = None
    #: The site root the worker serves (kits use it to look other functions up).
    site: str | None = None
    #: The largest result (bytes of JSON) the run may keep (``max_result``); None: no cap (synchronous calls).
    max_result: int | None = None
    #: The output rate cap: lines a second after a burst (``jobs.execution.output``); None: no cap.
    log_rate: float | None = None
    log_burst: int = 5000


@dataclass(frozen=True)
class Task:
    function: str
    path: str
    event: dict[str, Any]
    context: AttemptContext
    #: Variables set for the handler (the function's ``environment`` table), over the worker's own.
    environment: tuple[tuple[str, str], ...] = ()


def attempt_context(
    function: str,
    run_id: str,
    time_limit_s: float,
    *,
    namespace: str,
    trigger: Trigger = "http",
    attempt: int = 1,
    idempotency_key: str | None = None,
    scheduled_for: str | None = None,
    redis_url: str | None = None,
    artifacts_url: str | None = None,
    site: str | None = None,
    max_result: int | None = None,
    log_rate: float | None = None,
    log_burst: int = 5000,
) -> AttemptContext:
    """The context of an attempt starting now under ``time_limit_s``; without ``redis_url`` nothing persists."""
    return AttemptContext(
        function=function,
        run_id=run_id,
        deadline=time.time() + time_limit_s,
        attempt=attempt,
        trigger=trigger,
        idempotency_key=idempotency_key,
        scheduled_for=scheduled_for,
        namespace=namespace,
        redis_url=redis_url,
        artifacts_url=artifacts_url if redis_url is not None else None,
        site=site,
        max_result=max_result,
        log_rate=log_rate,
        log_burst=log_burst,
    )
