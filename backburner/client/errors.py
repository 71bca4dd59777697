"""Errors the client raises: every answer of the API that is not a success, and an API it cannot reach.

    ApiError(status, code, message)
    ├── Unauthorized    401: no token, or the wrong one (BACKBURNER_API_TOKEN)
    ├── NotFound        404: no such function, run, schedule or artifact
    ├── Conflict        409: the run or schedule is not in a state that allows it
    ├── BadAnswer       something answered that is not Backburner's JSON (a proxy's page, another service)
    └── Unreachable     nothing answered at the URL (status 0)

``wait`` raises the built-in ``TimeoutError`` when its timeout passes first.
"""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    """The API answered with an error: ``status`` (HTTP), ``code`` (``run_not_found``, ...), ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}" if status else message)
        self.status = status
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle and copy by state, not by calling ``__init__`` again with ``args`` (the formatted message):
        errors cross process pools and task queues whole, ``status``, ``code`` and ``message`` included."""
        return _restore, (type(self), self.args, self.__dict__)


class Unauthorized(ApiError):
    pass


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class BadAnswer(ApiError):
    """An answer that is not Backburner's JSON, or JSON of another shape: a proxy's page, another service at the
    URL. ``status`` is its HTTP status; ``message`` says so, with the first bytes of what came."""

    @classmethod
    def of(cls, response: httpx.Response, cause: Exception | None = None) -> BadAnswer:
        kind = response.headers.get("content-type") or "no content type"
        why = f" ({type(cause).__name__}: {cause})" if isinstance(cause, LookupError | TypeError) else ""
        message = f"the answer is not Backburner's JSON ({kind}){why}: {_first(response)}"
        return cls(response.status_code, "bad_answer", message)


def _first(response: httpx.Response, size: int = 120) -> str:
    """The first bytes of an answer, on one line."""
    try:
        body = response.content
    except httpx.ResponseNotRead:
        return "(not read)"
    text = body[:size].decode("utf-8", "replace")
    return repr(text) + (" …" if len(body) > size else "")


class Unreachable(ApiError):
    """No answer at all (connection refused, DNS, TLS, timeout).

    ``sent`` is True when a POST went out and its answer never came (a read timeout, a dropped connection):
    the API may have carried it out (a run created), so the message says how to check and retry safely.
    """

    def __init__(self, url: str, cause: Exception, *, sent: bool = False) -> None:
        self.url = url
        self.sent = sent
        why = str(cause) or type(cause).__name__
        if sent:
            message = (
                f"The Backburner API at {url} got the request but no answer came ({why}): it may have been carried "
                "out, a run created. Look with GET /api/runs (backburner runs) before retrying; a retry with the "
                "same Idempotency-Key returns that run instead of starting another."
            )
        else:
            message = f"Cannot reach the Backburner API at {url} ({why})."
        super().__init__(0, "unreachable", message)


def _restore(cls: type[ApiError], args: tuple[Any, ...], state: dict[str, Any]) -> ApiError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


_CLASSES: dict[int, type[ApiError]] = {401: Unauthorized, 404: NotFound, 409: Conflict}


def api_error(response: httpx.Response) -> ApiError | None:
    """The API's ``{"error": {"code", "message"}}`` answer as an ApiError; None for a success.

    A body of another shape (a proxy's error page, say) still becomes an ApiError (BadAnswer unless its status
    has a class of its own), saying it is not Backburner's JSON, with its first bytes.
    """
    if response.status_code < 400:
        return None
    data: Any = None
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            data = response.json()
        except ValueError:
            data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("message"):
        code = str(error.get("code") or f"http_{response.status_code}")
        return _CLASSES.get(response.status_code, ApiError)(response.status_code, code, str(error["message"]))
    strange = BadAnswer.of(response)
    return _CLASSES.get(response.status_code, BadAnswer)(
        response.status_code, f"http_{response.status_code}", strange.message
    )
