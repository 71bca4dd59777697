"""The shapes the management API answers with, for its OpenAPI document.

Handlers build their answers from the records themselves (``Run.public``, ``describe``) and return them as
they are: these models document them (``responses=``) and are checked against the real answers by the
schemathesis run in the suite, but no answer is validated on its way out, which would cost every request.
The run's shape is derived from ``jobs.runs.Run`` (``RunView``), so it cannot drift from what is stored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import JsonDict

from jobs.runs import RunView, Status
from jobs.schedules.state import SkipReason
from jobs.site import durations

from .errors import ErrorBody

__all__ = ["ErrorBody", "RunView"]


#: What the handlers accept, for parameters' schemas: ISO 8601 times, durations, SSE line numbers.
DATE_TIME: JsonDict = {"format": "date-time"}
DURATION = durations.PATTERN.pattern
LINE_NUMBER = r"^(-1|\d*)$"
#: One Server-Sent Event as a client parses it (``data`` is JSON text).
SSE_EVENT: JsonDict = {
    "type": "object",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}},
}


def answer(model: Any, description: str) -> dict[str, Any]:
    """One ``responses=`` entry: a JSON body of ``model``."""
    return {"model": model, "description": description}


class RunPage(BaseModel):
    """A page of runs, newest first; pass ``next_cursor`` as ``cursor`` for the next page (null: no more)."""

    runs: list[RunView]  # type: ignore[valid-type]
    next_cursor: str | None


class LogLine(BaseModel):
    t: float = Field(description="When the line was written (Unix time)")
    attempt: int
    stream: str = Field(description="stdout, stderr, or log (context.log)")
    level: str
    line: str


class RunLogs(BaseModel):
    run: str
    lines: list[LogLine]
    dropped: int = Field(description="Lines the output rate cap left out (BACKBURNER_LOG_RATE)")


class Replayed(BaseModel):
    of: str = Field(description="The run replayed")
    run: RunView  # type: ignore[valid-type]


class BulkReplayed(BaseModel):
    replayed: list[Replayed]


class Destinations(BaseModel):
    on_success: list[str]
    on_failure: list[str]
    artifacts: str | None = Field(description="The artifact store new runs write to")
    disabled: list[str] = Field(default_factory=list, description="URLs that answered 410 Gone and are not sent to")


class FunctionView(BaseModel):
    """Every effective setting of a function (defaults applied)."""

    name: str
    kind: Literal["sync", "background"]
    schedule: str | None
    timezone: str
    next_runs: list[str]
    time_limit_s: float
    retry_delays_s: list[float]
    body_limit_bytes: int
    memory_limit_bytes: int | None
    max_result_bytes: int | None
    concurrency: int | None
    overlap: str
    catchup: str
    catchup_window_s: float
    retention_s: float | None
    routes: list[str]
    destinations: Destinations


class WebhooksEnabled(BaseModel):
    function: str
    enabled: list[str]


class LastRun(BaseModel):
    id: str
    status: Status
    scheduled_for: str | None


class ScheduleView(BaseModel):
    """One schedule, from netlify.toml or the API, with its state."""

    name: str
    function: str
    schedule: str = Field(description="The cron expression")
    timezone: str
    payload: dict[str, Any]
    source: Literal["file", "api"]
    paused: bool
    next_runs: list[str]
    overlap: str | None
    catchup: str | None
    last_fired: str | None = Field(
        description="The newest tick the scheduler fired (kept after retention removes its run)"
    )
    last_run: LastRun | None
    skipped: int
    last_skipped: str | None


class Skip(BaseModel):
    tick: str
    reason: SkipReason
    blocking_run: str | None


class Backfilled(BaseModel):
    runs: list[RunView]  # type: ignore[valid-type]
    skipped: list[str] = Field(description="Ticks that already had a run")


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "no_workers", "unavailable"]
    redis: str
    workers: int
