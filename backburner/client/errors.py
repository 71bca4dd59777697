"""Errors the client raises: every answer of the API that is not a success, and an API it cannot reach.

    ApiError(status, code, message)
    ├── Unauthorized    401: no token, or the wrong one (BACKBURNER_API_TOKEN)
    ├── NotFound        404: no such function, run, schedule or artifact
    ├── Conflict        409: the run or schedule is not in a state that allows it
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


class Unauthorized(ApiError):
    pass


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class Unreachable(ApiError):
    """No answer at all (connection refused, DNS, TLS, timeout)."""

    def __init__(self, url: str, cause: Exception) -> None:
        super().__init__(
            0, "unreachable", f"Cannot reach the Backburner API at {url} ({cause or type(cause).__name__})."
        )


_CLASSES: dict[int, type[ApiError]] = {401: Unauthorized, 404: NotFound, 409: Conflict}


def api_error(response: httpx.Response) -> ApiError | None:
    """The API's ``{"error": {"code", "message"}}`` answer as an ApiError; None for a success.

    A body of another shape (a proxy's error page, say) still becomes an ApiError, with its text.
    """
    if response.status_code < 400:
        return None
    code, message = f"http_{response.status_code}", response.text[:500] or response.reason_phrase
    data: Any = None
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            data = response.json()
        except ValueError:
            data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("message"):
        code, message = str(error.get("code") or code), str(error["message"])
    return _CLASSES.get(response.status_code, ApiError)(response.status_code, code, message)
