"""The run: one trigger of one function, with its attempts, from acceptance to a final status.

A run record is the source of truth. Dramatiq messages only point at it with ``(run id, token)``;
the token changes whenever the run is dispatched again, so a stale or duplicated message can
never start a second attempt.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, create_model

from .errors import RunUnreadable

# The vocabulary of runs, defined once: the API, dashboard and CLI import these.
Status = Literal["delayed", "queued", "running", "retrying", "succeeded", "failed", "cancelled"]
Trigger = Literal["http", "api", "schedule", "backfill", "replay"]
#: How one attempt ended, as recorded on the run.
Outcome = Literal["succeeded", "failed", "timeout", "crashed", "lost", "cancelled"]
#: How one attempt ended, as the child process pool reports it.
ResultKind = Literal["ok", "error", "timeout", "crash", "cancelled"]

STATUSES: tuple[Status, ...] = get_args(Status)
TRIGGERS: tuple[Trigger, ...] = get_args(Trigger)
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
ACTIVE: frozenset[str] = frozenset(STATUSES) - TERMINAL
#: Triggers whose runs belong to a schedule's tick (``scheduled_for`` is the tick, ``schedule`` its name).
TICK_TRIGGERS: frozenset[str] = frozenset({"schedule", "backfill"})
OUTCOME_OF: dict[ResultKind, Outcome] = {
    "ok": "succeeded",
    "error": "failed",
    "timeout": "timeout",
    "crash": "crashed",
    "cancelled": "cancelled",
}

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: What a run id looks like (a ULID as ``new_id`` writes it); anything else is refused before it names a key.
RUN_ID_PATTERN = "^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
_RUN_ID = re.compile(RUN_ID_PATTERN)


def is_run_id(value: str) -> bool:
    return bool(_RUN_ID.match(value))


#: A result with more JSON than this is kept beside the run record, not in it: listings and the dashboard read
#: records by the hundred, so they carry its size (``result_size``) and ``GET /api/runs/{id}`` the result.
RESULT_INLINE_BYTES = 2048


def json_bytes(text: str) -> int:
    """Bytes of JSON text as stored and served (UTF-8): what ``max_result`` and ``result_size`` count.
    UnicodeEncodeError for text no record can hold (a lone surrogate; the child refuses such a result)."""
    return len(text) if text.isascii() else len(text.encode())


def new_id() -> str:
    """A ULID: 26 characters that sort by creation time, so ids double as a time index.

    Ids are not secrets (reading a run needs the API token), so the fast PRNG is enough; the
    random module reseeds itself in forked children.
    """
    value = (int(time.time() * 1000) << 80) | random.getrandbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def id_floor(ms: int) -> str:
    """The 10-character time prefix of a ULID made at ``ms``: every run id created earlier sorts below it."""
    value = ms << 80
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, 75, -5))


def id_floor_at(moment: datetime) -> str:
    """``id_floor`` of an instant (a naive one is UTC), for time ranges over the id indexes."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return id_floor(max(0, int(aware.timestamp() * 1000)))


def new_token() -> str:
    """A fencing token: it only has to differ from the run's previous ones."""
    return f"{random.getrandbits(64):016x}"


@dataclass(frozen=True)
class Result:
    """What one attempt produced, before it is recorded: its kind, the handler's value or error, and the
    artifacts it wrote. Built by the child process pool, read by the lifecycle and the hooks."""

    kind: ResultKind
    value: Any = None
    error: dict[str, Any] | None = None
    duration_s: float = 0.0
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    #: The artifact store the attempt wrote to (its URL), recorded on the run (``Run.artifact_store``).
    artifact_store: str | None = None

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    @property
    def outcome(self) -> Outcome:
        return OUTCOME_OF[self.kind]


@dataclass(frozen=True)
class Idempotency:
    """An ``Idempotency-Key`` as the store keeps it: the key, the surface it came through (``http``, ``api``,
    ``schedule``) and a fingerprint of the request (empty: any request with the key is the same one)."""

    key: str
    surface: str
    fingerprint: str = ""


def storable(text: str) -> str:
    """``text`` with any lone surrogate (``"\\ud800"``, which has no UTF-8) written as its escape, so a record
    holding it can be stored and served. The child applies it where it takes a handler's text (an exception,
    a progress message, a printed line)."""
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text


class ErrorInfo(BaseModel):
    type: str
    message: str
    traceback: str | None = None


class AttemptInfo(BaseModel):
    n: int
    started_at: str
    finished_at: str | None = None
    outcome: Outcome | None = None
    error: ErrorInfo | None = None
    worker: str | None = None
    #: Internal: the Redis id of the message that started it, so a claim whose reply was lost knows itself.
    message: str | None = None


class Progress(BaseModel):
    done: float | None = None
    total: float | None = None
    message: str | None = None

    @classmethod
    def from_hash(cls, fields: dict[bytes, bytes]) -> Progress:
        """From the progress hash a running attempt writes (``context.progress``: JSON values)."""

        def value(name: str) -> Any:
            raw = fields.get(name.encode())
            return None if raw is None else json.loads(raw)

        return cls(done=value("done"), total=value("total"), message=value("message"))


class ArtifactRef(BaseModel):
    name: str
    size: int
    content_type: str
    url: str | None = None


class Run(BaseModel):
    """A run as stored in Redis and returned by the API (DESIGN.md section 5)."""

    id: str
    function: str
    trigger: Trigger
    status: Status = "queued"
    created_at: str
    scheduled_for: str | None = None
    #: A delayed run's due time: it is ``delayed`` until then, then ``queued`` (``jobs.delayed``).
    run_at: str | None = None
    #: The schedule whose tick this run is (triggers ``schedule`` and ``backfill``).
    schedule: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    attempt: int = 0
    max_attempts: int = 1
    next_attempt_at: str | None = None
    attempts: list[AttemptInfo] = Field(default_factory=list)
    progress: Progress = Field(default_factory=Progress)
    result: Any = None
    #: Bytes of the result's JSON; over RESULT_INLINE_BYTES, ``result`` is only filled in for one run at a time.
    result_size: int | None = None
    error: ErrorInfo | None = None
    artifacts: list[ArtifactRef] = Field(default_factory=list)
    #: The store (URL or folder) the run's attempts wrote artifacts to, so they stay downloadable when
    #: BACKBURNER_ARTIFACTS or the function's ``artifacts`` changes later; None for runs recorded before.
    artifact_store: str | None = None
    deliveries: list[dict[str, Any]] = Field(default_factory=list)
    idempotency_key: str | None = None
    replay_of: str | None = None
    #: The newest replay of this run, so a bulk replay runs each failure again only once.
    replayed_by: str | None = None
    time_limit_s: float
    retry_delays_s: list[float] = Field(default_factory=list)
    # Internal: the current dispatch token and the worker holding the current attempt.
    token: str = Field(default_factory=new_token)
    message_id: str | None = None
    worker: str | None = None

    #: The exact JSON this process last wrote for the run, so the next write can skip a read.
    stored: str | None = Field(default=None, exclude=True)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def record(self) -> tuple[str, str | None]:
        """The JSON to store, and the result's JSON when it is too big to keep in it (stored beside it)."""
        if self.result is None:  # none, or kept apart already (records read back carry none)
            return self.model_dump_json(), None
        encoded = self.measure_result()
        if self.result_size is None or self.result_size <= RESULT_INLINE_BYTES:
            return self.model_dump_json(), None
        return self.model_dump_json(exclude={"result"}), encoded

    def measure_result(self) -> str:
        """The result's JSON, its size noted in ``result_size`` (for a result set since the record was read)."""
        encoded = json.dumps(self.result, ensure_ascii=False, separators=(",", ":"))
        self.result_size = json_bytes(encoded)
        return encoded

    @property
    def result_apart(self) -> bool:
        """Whether the result is kept beside the record (too big to carry in listings)."""
        return self.result_size is not None and self.result_size > RESULT_INLINE_BYTES

    def look_at_ms(self) -> int:
        """From when the reaper has a reason to look at this active run (its score in the active index):
        a running run always (its worker may die at any moment), a queued run from when it was queued (its
        creation, or its ``run_at`` once a delayed run is due), a retrying run from its due time, a delayed
        run from its ``run_at``. So a sweep reads only those, not every run of a backlog."""
        if self.status == "running":
            return 0
        moment = self.queued_at
        if self.status == "retrying" and self.next_attempt_at:
            moment = self.next_attempt_at
        return int(datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp() * 1000)

    @property
    def queued_at(self) -> str:
        """When the run was first ready to start: its creation, or its ``run_at`` if it was delayed past that."""
        return max(self.created_at, self.run_at) if self.run_at else self.created_at

    def public(self) -> dict[str, Any]:
        """The API's view (``RunView``): everything but the dispatch internals."""
        exclude: Any = {**dict.fromkeys(INTERNAL_FIELDS, True), "attempts": {"__all__": INTERNAL_ATTEMPT_FIELDS}}
        return self.model_dump(mode="json", exclude=exclude)


#: Fields of a stored run, and of its attempts, that the API never shows.
INTERNAL_FIELDS = frozenset({"token", "message_id"})
INTERNAL_ATTEMPT_FIELDS = frozenset({"message"})


def _view(model: type[BaseModel], name: str, doc: str, hidden: frozenset[str], **changed: Any) -> type[BaseModel]:
    """``model`` without its ``hidden`` fields: the shape the API documents (OpenAPI), derived, never retyped."""
    kept = {n: (f.annotation, f) for n, f in model.model_fields.items() if n not in hidden and not f.exclude}
    return create_model(name, __doc__=doc, **{**kept, **changed})


AttemptView = _view(AttemptInfo, "Attempt", "One attempt of a run.", INTERNAL_ATTEMPT_FIELDS)
RunView = _view(
    Run,
    "Run",
    "A run as the API answers it (DESIGN.md section 5); listings carry ``result: null`` for big results.",
    INTERNAL_FIELDS,
    attempts=(list[AttemptView], Field(default_factory=list)),  # type: ignore[valid-type]
)


log = logging.getLogger("backburner.runs")
#: Unreadable records already logged by this process (each is said once, not on every listing).
_reported: set[str] = set()


def parse_run(raw: str | bytes, run_id: str) -> Run:
    """A stored record as a Run; RunUnreadable (logged once per process) when this version cannot read it."""
    try:
        return Run.model_validate_json(raw)
    except ValueError as exc:  # pydantic's ValidationError, and JSON that does not parse
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        report_unreadable(run_id, why)
        raise RunUnreadable(run_id, why) from None


def report_unreadable(run_id: str, why: str) -> None:
    """Log that a run record cannot be read and is skipped: once per run and process, not on every listing."""
    if run_id in _reported:
        return
    if len(_reported) > 10_000:
        _reported.clear()
    _reported.add(run_id)
    log.warning("run %s: its record cannot be read and is skipped (%s)", run_id, why)


def readable(raw: str | bytes, run_id: str) -> Run | None:
    """``parse_run``, with None (and a warning, once) for a record that cannot be read."""
    try:
        return parse_run(raw, run_id)
    except RunUnreadable:
        return None
