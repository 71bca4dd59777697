"""What the client returns: runs, schedules and the answers of bulk calls, as typed objects.

Each object keeps the JSON it was made from in ``data`` (what ``--json`` prints), so fields added by a newer
server are not lost; times are aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobs.runs import TERMINAL, Status, Trigger


def when(value: Any) -> datetime | None:
    """An API timestamp (``2026-03-01T06:00:00.000Z``) as an aware datetime."""
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True)
class RunError:
    type: str
    message: str
    traceback: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RunError | None:
        if not data:
            return None
        return cls(str(data.get("type", "")), str(data.get("message", "")), data.get("traceback"))


@dataclass(frozen=True)
class Attempt:
    n: int
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str | None
    error: RunError | None
    #: The worker that ran it (``host:pid:id``).
    worker: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attempt:
        return cls(
            n=int(data["n"]),
            started_at=when(data.get("started_at")),
            finished_at=when(data.get("finished_at")),
            outcome=data.get("outcome"),
            error=RunError.from_json(data.get("error")),
            worker=data.get("worker"),
        )


@dataclass(frozen=True)
class Progress:
    done: float | None = None
    total: float | None = None
    message: str | None = None


@dataclass(frozen=True)
class Artifact:
    name: str
    size: int
    content_type: str
    url: str | None = None


@dataclass(frozen=True)
class Run:
    """One run as ``GET /api/runs/{id}`` shows it (DESIGN.md section 5)."""

    id: str
    function: str
    trigger: Trigger
    status: Status
    created_at: datetime
    scheduled_for: datetime | None
    run_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    attempt: int
    max_attempts: int
    next_attempt_at: datetime | None
    attempts: list[Attempt]
    progress: Progress
    result: Any
    #: Bytes of the result's JSON; listings carry ``result=None`` for results over 2 KB (``get`` has them all).
    result_size: int | None
    error: RunError | None
    artifacts: list[Artifact]
    schedule: str | None
    idempotency_key: str | None
    replay_of: str | None
    #: The newest replay of this run.
    replayed_by: str | None
    #: Its webhook deliveries (``on_success``, ``on_failure``), each as the API shows it.
    deliveries: list[dict[str, Any]]
    #: The artifact store (URL or folder) its attempts wrote to.
    artifact_store: str | None
    #: The function's time limit and retry delays when the run was created.
    time_limit_s: float | None
    retry_delays_s: list[float]
    #: The worker holding its current attempt.
    worker: str | None
    data: dict[str, Any] = field(repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        """Succeeded, failed or cancelled: nothing will change any more."""
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        progress = data.get("progress") or {}
        return cls(
            id=data["id"],
            function=data["function"],
            trigger=data["trigger"],
            status=data["status"],
            created_at=when(data["created_at"]),  # type: ignore[arg-type]
            scheduled_for=when(data.get("scheduled_for")),
            run_at=when(data.get("run_at")),
            started_at=when(data.get("started_at")),
            finished_at=when(data.get("finished_at")),
            attempt=int(data.get("attempt", 0)),
            max_attempts=int(data.get("max_attempts", 1)),
            next_attempt_at=when(data.get("next_attempt_at")),
            attempts=[Attempt.from_json(a) for a in data.get("attempts") or ()],
            progress=Progress(progress.get("done"), progress.get("total"), progress.get("message")),
            result=data.get("result"),
            result_size=data.get("result_size"),
            error=RunError.from_json(data.get("error")),
            artifacts=[
                Artifact(a["name"], int(a["size"]), a["content_type"], a.get("url"))
                for a in data.get("artifacts") or ()
            ],
            schedule=data.get("schedule"),
            idempotency_key=data.get("idempotency_key"),
            replay_of=data.get("replay_of"),
            replayed_by=data.get("replayed_by"),
            deliveries=[dict(d) for d in data.get("deliveries") or ()],
            artifact_store=data.get("artifact_store"),
            time_limit_s=float(data["time_limit_s"]) if data.get("time_limit_s") is not None else None,
            retry_delays_s=[float(d) for d in data.get("retry_delays_s") or ()],
            worker=data.get("worker"),
            data=data,
        )


@dataclass(frozen=True)
class Schedule:
    """One schedule as ``GET /api/schedules`` lists it, whether it comes from netlify.toml or the API."""

    name: str
    function: str
    cron: str
    timezone: str
    source: str
    paused: bool
    payload: dict[str, Any]
    next_runs: list[datetime]
    #: The newest tick the scheduler fired (``data["last_run"]`` has that run, unless retention removed it).
    last_fired: datetime | None
    data: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schedule:
        return cls(
            name=data["name"],
            function=data.get("function", data["name"]),
            cron=data["schedule"],
            timezone=data.get("timezone", "UTC"),
            source=data.get("source", "file"),
            paused=bool(data.get("paused")),
            payload=dict(data.get("payload") or {}),
            next_runs=[when(t) for t in data.get("next_runs") or ()],  # type: ignore[misc]
            last_fired=when(data.get("last_fired")),
            data=data,
        )


class Backfill(list[Run]):
    """The runs a backfill created (a list), and in ``skipped`` the ticks that already had a run."""

    def __init__(self, runs: list[Run], skipped: list[datetime], data: dict[str, Any] | None = None) -> None:
        super().__init__(runs)
        self.skipped = skipped
        #: The answer as the API sent it (``{"runs", "skipped"}``).
        self.data = data or {}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Backfill:
        skipped: list[datetime] = [when(t) for t in data["skipped"]]  # type: ignore[misc]
        return cls([Run.from_json(r) for r in data["runs"]], skipped, data)


@dataclass(frozen=True)
class Replayed:
    """One run of a bulk replay: ``of`` is the failed run's id, ``run`` the new run."""

    of: str
    run: Run
