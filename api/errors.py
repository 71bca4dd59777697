"""Every error leaves the API as JSON ``{"error": {"code", "message"}}`` with the right status."""

from __future__ import annotations

import logging
import re
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from jobs.errors import BackburnerError, OutcomeUnknown
from jobs.runs import RUN_ID_PATTERN
from jobs.site import NAME_PATTERN

log = logging.getLogger("backburner.api")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


_MEANINGS = {
    400: "Malformed input (a parameter, payload, run id or Idempotency-Key)",
    401: "Missing or wrong API token",
    403: "Refused: cross-site, missing CSRF token, or a foreign Origin in dev",
    404: "No such function, run, schedule or artifact",
    409: "Conflict: the run's state does not allow it, or the Idempotency-Key was used for another request",
    413: "Request body over the limit",
    414: "URL over 8 KB",
    422: "A parameter or body field does not match the schema",
    429: "Too many failed authentication attempts from this address",
    431: "A header over 8 KB, or all headers over 32 KB",
    503: "Redis is unavailable",
}
#: What any management-API route can answer besides its own outcomes.
COMMON = (400, 401, 403, 414, 422, 429, 431, 503)


def responses(*codes: int, spelled: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the error statuses a route can answer (plus the common ones).

    FastAPI documents a ``model`` in the route's own media type; a route that answers Server-Sent Events or
    text says ``spelled=True`` to get its (JSON) errors written out instead.
    """
    if spelled:
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        return {code: {"content": content, "description": _MEANINGS[code]} for code in sorted({*COMMON, *codes})}
    return {code: {"model": ErrorBody, "description": _MEANINGS[code]} for code in sorted({*COMMON, *codes})}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


#: Plain words for the patterns that parameters are checked against.
_PATTERNS = {
    RUN_ID_PATTERN: "is not a run id (26 characters, a ULID)",
    NAME_PATTERN.pattern: "is not a function name (letters, digits, '_' and '-')",
}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(item) for item in error.get("loc", ()) if item != "body")
        message = str(error.get("msg"))
        if error.get("type") == "missing" and not where:
            message = "the body is missing: send a JSON object"
        pattern = (error.get("ctx") or {}).get("pattern")
        if error.get("type") == "string_pattern_mismatch" and pattern in _PATTERNS:
            message = f"{str(error.get('input'))[:60]!r} {_PATTERNS[pattern]}."
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or "invalid request"


def _broken_json(exc: RequestValidationError) -> str | None:
    """What is wrong with a body that does not parse as JSON, and where, in the words a function's payload gets
    (``api.body``: "at line 1, column 6"; FastAPI gives a character offset)."""
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            loc = tuple(error.get("loc", ()))
            at = ""
            if len(loc) > 1 and isinstance(loc[1], int):
                text = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body or "")
                before = text[: loc[1]]
                at = f" at line {before.count(chr(10)) + 1}, column {loc[1] - before.rfind(chr(10))}"
            return f"The body is not valid JSON: {(error.get('ctx') or {}).get('error', 'it does not parse')}{at}."
    return None


def _not_json(request: Request, exc: RequestValidationError) -> str | None:
    """Why a body FastAPI did not read as JSON was refused: its content type (``curl -d`` sends a form's),
    rather than "Input should be a valid dictionary"."""
    for error in exc.errors():
        if tuple(error.get("loc", ())) == ("body",) and isinstance(error.get("input"), bytes):
            sent = request.headers.get("content-type", "none")
            return f"the body must be JSON sent with content-type: application/json (this one was {sent})"
    return None


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods ``path`` answers, for a 405's ``Allow`` (Starlette names only the first route that matched),
    read from the OpenAPI document so the two always agree. A fixed path beats the ones with parameters:
    ``/api/runs/replay`` is not a run id."""
    fixed: set[str] = set()
    templated: set[str] = set()
    for pattern, has_parameters, methods in _operations(app):
        if pattern.fullmatch(path):
            (templated if has_parameters else fixed).update(methods)
    allowed = fixed or templated
    if "GET" in allowed:
        allowed.add("HEAD")  # api.head answers it as the GET
    return sorted(allowed)


def _operations(app: FastAPI) -> list[tuple[re.Pattern[str], bool, set[str]]]:
    """Each documented path as a pattern (a parameter is one segment), whether it has parameters, and its
    methods; compiled once per app."""
    compiled: list[tuple[re.Pattern[str], bool, set[str]]] | None = getattr(app.state, "operations", None)
    if compiled is None:
        compiled = []
        for template, operations in app.openapi()["paths"].items():
            parts = re.split(r"(\{[^/{}]+\})", template)
            regex = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
            methods = {method.upper() for method in operations}
            compiled.append((re.compile(regex), len(parts) > 1, methods))
        app.state.operations = compiled
    return compiled


def install(app: FastAPI) -> None:
    @app.exception_handler(BackburnerError)
    async def backburner_error(request: Request, exc: BackburnerError) -> JSONResponse:
        headers = {"Retry-After": "5"} if exc.status == 503 else None
        if isinstance(exc, OutcomeUnknown):  # the run to look for, where a 202 would have named it
            headers = {"Retry-After": "5", "x-nf-request-id": exc.run_id}
        return error_response(exc.status, exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if (broken := _broken_json(exc)) is not None:  # not JSON at all: 400, as for a function's payload
            return error_response(400, "invalid_input", broken)
        return error_response(422, "invalid_request", _not_json(request, exc) or _validation_message(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        codes = {
            400: "invalid_input",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            429: "too_many_attempts",
        }
        code = codes.get(exc.status_code, "error")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405 and (allowed := allowed_methods(request.app, request.url.path)):
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}  # else Starlette's (an artifact name with '/')
        return error_response(exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # The client left (or the server dropped a malformed request) while its body was read: no one reads this.
        return error_response(400, "client_disconnected", "The client went away before its request body arrived.")

    @app.exception_handler(redis.RedisError)
    async def redis_error(request: Request, exc: redis.RedisError) -> JSONResponse:
        return error_response(503, "store_unavailable", f"Redis is unavailable: {exc}", {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "Internal error; the server log has the details.")
