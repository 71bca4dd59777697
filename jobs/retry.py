"""Exceptions a handler raises to steer its own retries.

By default a failed attempt is retried on the function's schedule (60 s, then 120 s). Some failures know
better: a payload that can never work should fail the run now, and an API that answered "429, retry in
90 s" should be asked again then, not on the fixed schedule::

    from jobs.retry import NonRetriable, RetryAfter

    def handler(event, context):
        if "day" not in event["body"]:
            raise NonRetriable("the payload has no 'day'")     # failed for good, no retries left wasted
        response = fetch()
        if response.status_code == 429:
            raise RetryAfter(float(response.headers["retry-after"]), "rate limited")  # still counts as a try

Both are recorded on the attempt like any other error (type, message, traceback).

An exception whose ``retriable`` attribute is False fails the run at once too. Backburner's own errors use
it: a mistake in a kit's call or configuration (an unknown sink, a template that does not render, a
schema that does not fit, missing credentials) fails the same way every time, while what may pass (a
source file not there yet, a database or S3 that did not answer) is retried on the schedule.
"""

from __future__ import annotations

from typing import Any

#: The longest ``RetryAfter`` is honoured for; longer asks wait this long.
MAX_RETRY_AFTER_S = 86_400.0


class NonRetriable(Exception):
    """Fail the run now, whatever retries the function has left."""


class RetryAfter(Exception):
    """Retry after ``seconds`` (a number, or a duration as netlify.toml writes it: ``"90s"``, ``"5m"``) instead of
    the function's next delay (if it has attempts left)."""

    def __init__(self, seconds: float | str, message: str = "") -> None:
        if isinstance(seconds, str):
            from .site.durations import parse_duration  # only for a string: the child never loads the site

            seconds = parse_duration(seconds)
        super().__init__(message or f"retry after {seconds:g} s")
        self.seconds = min(max(0.0, float(seconds)), MAX_RETRY_AFTER_S)


def steering(exc: BaseException) -> dict[str, Any]:
    """What the attempt's error record says about retrying (empty for an ordinary exception)."""
    if isinstance(exc, NonRetriable) or getattr(exc, "retriable", True) is False:
        return {"retry": False}
    if isinstance(exc, RetryAfter):
        return {"retry_after_s": exc.seconds}
    return {}
