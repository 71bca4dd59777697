"""Every error Backburner raises on purpose.

    BackburnerError
    ├── ConfigError            netlify.toml, inline config or settings are wrong
    │   └── ScheduleError      a cron expression or time zone is wrong
    ├── FunctionNotFound       no function by that name in the site
    ├── ScheduleNotFound       no schedule by that name (in netlify.toml or created through the API)
    ├── PayloadTooLarge        a request body is over the function kind's limit
    ├── InvalidInput           a payload, artifact name or parameter is malformed
    ├── RunNotFound            no run by that id
    ├── RunUnreadable          a run record this version cannot read (older, or corrupted)
    ├── Conflict               the run is not in a state that allows the action
    │   └── IdempotencyConflict an Idempotency-Key was already used for a different request
    ├── StoreUnavailable       Redis could not take or give the data
    │   └── OutcomeUnknown     Redis did not answer a run's creation in time: it may exist all the same
    └── DeliveryError          an artifact store or webhook did not accept a delivery

Each class has an HTTP status so the API can map it without a table of its own.
"""

from __future__ import annotations

#: Characters of a name or expression a message repeats: a 5,000-character name comes back as its first 120.
SHOWN_CHARS = 120


def clipped(text: str) -> str:
    """``text`` as a message repeats it: whole, or its start and how long it was."""
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}… ({len(text):,} characters)"


class BackburnerError(Exception):
    """Base class of every error Backburner raises on purpose."""

    status = 500
    code = "internal"
    #: Whether trying again could help. Raised in a handler, an error that says no fails the run at once
    #: instead of spending its retries (``jobs.retry.steering``): a mistake in the call or its configuration
    #: fails the same way every time.
    retriable = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(BackburnerError):
    """Raised when netlify.toml, a function's inline config or a setting is wrong.

    ``where`` names the file (and line, when known) so the message points at the fix.
    """

    status = 422
    code = "invalid_config"
    retriable = False

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
        super().__init__(f"{where}{message}")


class ScheduleError(ConfigError):
    """Raised when a schedule's cron expression or time zone cannot be used."""


class FunctionNotFound(BackburnerError):
    """Raised when a request names a function the site does not have."""

    status = 404
    code = "function_not_found"

    def __init__(self, name: str, *, note: str = "") -> None:
        self.name = name
        super().__init__(f"No function named {clipped(name)!r} in this site.{note}")


class ScheduleNotFound(BackburnerError):
    """Raised when a request names a schedule that neither netlify.toml nor the API defines."""

    status = 404
    code = "schedule_not_found"

    def __init__(self, name: str, known: list[str] | None = None, *, function: bool = False) -> None:
        self.name = name
        if function:
            message = (
                f'Function {clipped(name)!r} has no schedule of its own: add `schedule = "..."` to it in netlify.toml, '
                "or create one with POST /api/schedules."
            )
        else:
            listed = ", ".join(known[:20]) if known else "none"
            message = f"No schedule named {clipped(name)!r} (schedules: {listed})."
        super().__init__(message)


class PayloadTooLarge(BackburnerError):
    """Raised when a request body is over the limit for the function's kind."""

    status = 413
    code = "payload_too_large"


class InvalidInput(BackburnerError):
    """Raised when a payload, artifact name or query parameter is malformed."""

    status = 400
    code = "invalid_input"
    retriable = False


class RunNotFound(BackburnerError):
    """Raised when no run has the given id."""

    status = 404
    code = "run_not_found"

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"No run with id {run_id!r}.")


class RunUnreadable(BackburnerError):
    """Raised when a stored run record cannot be read: written by an older version, or corrupted.

    Listings, the dashboard and the reaper skip such a record (and log it); asking for it alone says this.
    """

    status = 422
    code = "run_unreadable"

    def __init__(self, run_id: str, why: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"The stored record of run {run_id} cannot be read (written by another version, or corrupted): {why}"
        )


class Conflict(BackburnerError):
    """Raised when a run's state does not allow the requested action."""

    status = 409
    code = "conflict"


class IdempotencyConflict(Conflict):
    """Raised when an ``Idempotency-Key`` comes back with a different request within its window."""

    code = "idempotency_conflict"

    def __init__(self, key: str, run_id: str, window_s: float) -> None:
        self.run_id = run_id
        hours = window_s / 3600
        within = f"{hours:g} h" if hours >= 1 else f"{window_s:g} s"
        super().__init__(
            f"Idempotency-Key {key!r} was already used within {within} for a different request (method, path, "
            f"query or body), which created run {run_id}. Send a new key for a new request."
        )


class StoreUnavailable(BackburnerError):
    """Raised when Redis cannot durably take or return data; callers answer 503."""

    status = 503
    code = "store_unavailable"


class OutcomeUnknown(StoreUnavailable):
    """Raised when Redis did not answer the write of run ``run_id`` in time: a Redis that hung still runs the
    command when it wakes, so the run may exist all the same, and the caller is told which one to look for."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"Redis did not answer in time, so run {run_id} may have been created all the same: "
            f"GET /api/runs/{run_id} tells (404: it was not). Send an Idempotency-Key to retry safely."
        )


class NotLeader(BackburnerError):
    """Raised when a scheduler's write reaches Redis after it lost the leader lease (a partition or a pause held
    it): the write is dropped, and the leader that took over carries on from Redis."""

    status = 409
    code = "not_leader"


class DeliveryError(BackburnerError):
    """Raised when an artifact store or webhook endpoint does not accept a delivery."""

    status = 502
    code = "delivery_failed"
