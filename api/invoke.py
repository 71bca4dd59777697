"""Netlify's invocation URLs: ``/.netlify/functions/{name}`` (and ``/{name}/{rest}``), any method.

A background function answers 202 with an empty body once its run is durably in Redis; a
synchronous one is run in a warm child process under its limit and its response is mapped back.
"""

from __future__ import annotations

import base64
import logging
import re
from typing import Any
from urllib.parse import quote_from_bytes, urlunsplit

import redis
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from jobs.errors import OutcomeUnknown, StoreUnavailable
from jobs.event import build_event
from jobs.execution.task import Task, attempt_context
from jobs.lifecycle import new_run
from jobs.runs import Idempotency, Run, new_id
from jobs.site import Function

from .body import read_body
from .errors import error_response
from .idempotency import request_idempotency
from .listeners import FunctionRoute
from .sessions import COOKIE

log = logging.getLogger("backburner.api")


async def invoke(request: Request) -> Response:
    """The hot path, so a plain Starlette endpoint: no dependency solving per request."""
    runtime = request.app.state.runtime
    function = runtime.function(request.path_params["name"])
    if function.schedule is not None and not function.background:
        _scheduled(request, function)
    limits = function.limits("http")
    body = await read_body(request, function, limits.body_limit)
    idempotency = request_idempotency(request, "http", body) if function.background else None
    url = request.url
    path = _raw_path(request.scope)
    event = build_event(
        method=request.method,
        url=urlunsplit(url.components._replace(path=path)),
        path=path,
        raw_query=url.query,
        headers=_without_secrets(request),
        query=request.query_params.multi_items(),
        body=body,
    )
    if route := request.scope.get("backburner.route"):
        event["route"] = route
    if function.background:
        return await _enqueue(runtime, function, event, idempotency)
    return await _run_sync(request, function, event, limits.time_limit_s)


#: What a path keeps as the caller wrote it: its own percent escapes, and the characters a URL's path may hold.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


def _raw_path(scope: Any) -> str:
    """The path as the caller sent it, percent escapes and all, as Netlify's event has it (``%2F`` is not a
    slash, ``%3F`` not a query); what a URL cannot hold as it came (a space, raw UTF-8) is escaped."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    return quote_from_bytes(raw, safe=_PATH_SAFE)


def _scheduled(request: Request, function: Function) -> None:
    """A scheduled function answers no URL, as on Netlify: outside ``dev`` a 404 says how to run it now; in ``dev``
    it runs, with the note ``netlify dev`` gives. (A scheduled background function keeps its URL and its 202.)"""
    name = function.name
    run_now = f"run it now with `backburner schedules trigger {name}` (POST /api/schedules/{name}/trigger)"
    if request.app.state.settings.dev:
        log.warning("%s is a scheduled function: it answers its URL in dev only; elsewhere, %s", name, run_now)
        return
    message = f"{name} is a scheduled function, which answers no URL (as on Netlify); {run_now}."
    raise HTTPException(404, message)


def _without_secrets(request: Request) -> list[tuple[str, str]]:
    """The request's headers minus Backburner's own secrets, which handlers never see (DESIGN.md section 10):
    the dashboard's session cookie (browsers send it to every port of the host) and the API token."""
    headers = request.headers.items()
    if COOKIE not in request.cookies and "authorization" not in request.headers:
        return headers
    token = request.app.state.settings.api_token
    kept = []
    for name, value in headers:
        if name == "cookie" and COOKIE in value:
            parts = (part.strip() for part in value.split(";"))
            value = "; ".join(part for part in parts if part and part.partition("=")[0] != COOKIE)
            if not value:
                continue
        elif name == "authorization" and token and value.partition(" ")[2] == token:
            continue
        kept.append((name, value))
    return kept


async def create(runtime: Any, run: Run, event: dict[str, Any], idempotency: Idempotency | None) -> Run:
    """Store the run and its message, or raise: ``OutcomeUnknown`` when Redis did not answer in time (it may
    have stored them all the same, so the caller is told which run to look for), else ``StoreUnavailable``."""
    try:
        created, _ = await runtime.store.create_async(run, event, idempotency=idempotency)
    except StoreUnavailable as exc:
        if isinstance(exc.__cause__, redis.TimeoutError):
            raise OutcomeUnknown(run.id) from exc
        raise
    return created


async def _enqueue(
    runtime: Any, function: Function, event: dict[str, Any], idempotency: Idempotency | None
) -> Response:
    run = new_run(function, "http", idempotency_key=idempotency.key if idempotency else None)
    run = await create(runtime, run, event, idempotency)
    return Response(
        status_code=202,
        headers={"x-nf-request-id": run.id, "location": f"/api/runs/{run.id}"},
    )


async def _run_sync(request: Request, function: Function, event: dict[str, Any], limit: float) -> Response:
    request_id = new_id()
    pool = request.app.state.sync_pool()
    settings = request.app.state.settings
    context = attempt_context(function.name, request_id, limit, namespace=settings.namespace)
    task = Task(function.name, str(function.path), event, context, tuple(function.environment.items()))
    result = await run_in_threadpool(pool.run, task, limit, memory_limit=function.memory_limit)
    headers = {"x-nf-request-id": request_id}
    if result.kind == "timeout":
        message = (result.error or {}).get("message", "timed out")
        log.warning("%s (request %s): %s", function.name, request_id, message)
        return error_response(504, "function_timeout", message, headers)
    if not result.ok:
        error = result.error or {}
        message = f"{function.name} failed: {error.get('type')}: {error.get('message')}"
        # A synchronous call keeps no run: its log is the one place its traceback (redacted in the child) shows.
        trace = str(error.get("traceback") or "").rstrip()
        log.warning("%s (request %s)%s", message, request_id, f"\n{trace}" if trace else "")
        if trace and not settings.dev:  # the handler's own exception: its text may say what no caller should see
            message = (
                f"{function.name} failed: {error.get('type')} (its message is in the API's log, request {request_id})"
            )
        return error_response(502, "function_error", message, headers)
    return _to_response(function, result.value, headers)


def _to_response(function: Function, value: Any, headers: dict[str, str]) -> Response:
    """Map a Lambda-style ``{statusCode, headers, multiValueHeaders, body, isBase64Encoded}``, as ``netlify dev``
    does: a numeric string or whole float is a status code, base64 is read leniently, and ``multiValueHeaders``
    replace the ``headers`` of the same name. What no HTTP response can carry is the function's fault: 502."""
    try:
        return _mapped(function.name, value, headers)
    except _Invalid as exc:
        return error_response(502, "invalid_response", str(exc), headers)


class _Invalid(ValueError):
    """A handler's response that cannot be served, and why."""


def _mapped(name: str, value: Any, headers: dict[str, str]) -> Response:
    if not isinstance(value, dict):
        raise _Invalid(f"{name} returned {type(value).__name__}; a response must be a dict with a statusCode")
    status = _status(value.get("statusCode"))
    body = value.get("body")
    if body is not None and not isinstance(body, str):
        raise _Invalid("Your function response must have a string body.")
    content = _base64(name, body) if body and value.get("isBase64Encoded") else (body or "").encode()
    fields = [(key.lower(), item) for key, item in _header_items(name, value.get("headers"), "headers")]
    for key, items in _header_items(name, value.get("multiValueHeaders"), "multiValueHeaders"):
        values = items if isinstance(items, list | tuple) else [items]
        fields = [field for field in fields if field[0] != key.lower()] + [(key.lower(), item) for item in values]
    fields = [(key, item) for key, item in fields if key not in _FRAMING]
    given = {key for key, _ in fields}  # the handler's own values replace ours
    ours = {key: item for key, item in headers.items() if key not in given}
    response = Response(content=content, status_code=status, headers=ours)
    for key, item in fields:
        text = str(item).lower() if isinstance(item, bool) else str(item)
        _check_field(name, key, text)
        response.headers.append(key, text)
    return response


def _status(status: Any) -> int:
    """``netlify dev`` takes anything ``Number()`` reads as a status: 200, 200.0 and "200" alike."""
    number: Any = status
    if (isinstance(status, str) and _DIGITS.fullmatch(status)) or (isinstance(status, float) and status.is_integer()):
        number = int(status)
    if isinstance(number, bool) or not isinstance(number, int) or not 100 <= number <= 599:
        raise _Invalid(f"Your function response must have a numerical statusCode. You gave: {status!r}")
    return number


def _base64(name: str, body: str) -> bytes:
    """Leniently, as Node's ``Buffer.from(body, "base64")``: padding may be missing, URL-safe letters are read."""
    data = "".join(body.split()).replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except ValueError:
        raise _Invalid(f"{name} returned a body marked isBase64Encoded that is not base64") from None


def _header_items(name: str, value: Any, key: str) -> list[tuple[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise _Invalid(f"{name} returned {key} as a {type(value).__name__}; it must map header names to values")
    return [(str(header), item) for header, item in value.items()]


#: Set by the server from the body it sends: a handler's own could only contradict it.
_FRAMING = frozenset({"content-length", "transfer-encoding"})
_DIGITS = re.compile(r"\s*[0-9]+\s*")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")
#: What no header value may hold: line breaks and other control characters (a tab is fine), or anything beyond
#: Latin-1, which HTTP/1.1 cannot carry.
_NOT_IN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")


def _check_field(function: str, name: str, value: str) -> None:
    """A header a response can carry: a token for a name; a value of visible Latin-1 text, spaces and tabs (no
    line break, which would end the header and start another)."""
    if not _TOKEN.fullmatch(name):
        raise _Invalid(f"{function} returned a header named {name[:100]!r}, which is not a valid header name")
    if _NOT_IN_VALUE.search(value):
        raise _Invalid(f"{function} returned header {name!r} with a line break, control or non-Latin-1 character")


routes = [
    FunctionRoute("/.netlify/functions/{name}", invoke),
    FunctionRoute("/.netlify/functions/{name}/{rest:path}", invoke),
]
