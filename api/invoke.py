"""Netlify's invocation URLs: ``/.netlify/functions/{name}`` (and ``/{name}/{rest}``), any method.

A background function answers 202 with an empty body once its run is durably in Redis; a
synchronous one is run in a warm child process under its limit and its response is mapped back.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import redis
from starlette.concurrency import run_in_threadpool
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

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
log = logging.getLogger("backburner.api")


async def invoke(request: Request) -> Response:
    """The hot path, so a plain Starlette endpoint: no dependency solving per request."""
    runtime = request.app.state.runtime
    function = runtime.function(request.path_params["name"])
    limits = function.limits("http")
    body = await read_body(request, function, limits.body_limit)
    idempotency = request_idempotency(request, "http", body) if function.background else None
    url = request.url
    event = build_event(
        method=request.method,
        url=str(url),
        path=url.path,
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
    """Map a Lambda-style ``{statusCode, headers, multiValueHeaders, body, isBase64Encoded}``."""
    if not isinstance(value, dict):
        message = f"{function.name} returned {type(value).__name__}; a response must be a dict with a statusCode"
        return error_response(502, "invalid_response", message, headers)
    status = value.get("statusCode")
    if not isinstance(status, int) or not 100 <= status <= 599:
        message = f"Your function response must have a numerical statusCode. You gave: {status!r}"
        return error_response(502, "invalid_response", message, headers)
    body = value.get("body")
    if body is not None and not isinstance(body, str):
        return error_response(502, "invalid_response", "Your function response must have a string body.", headers)
    content = base64.b64decode(body) if body and value.get("isBase64Encoded") else (body or "").encode()
    response = Response(content=content, status_code=status, headers=headers)
    for key, item in (value.get("headers") or {}).items():
        response.headers[key] = str(item).lower() if isinstance(item, bool) else str(item)
    for key, items in (value.get("multiValueHeaders") or {}).items():
        for item in items:
            response.headers.append(key, str(item))
    return response


routes = [
    FunctionRoute("/.netlify/functions/{name}", invoke, methods=METHODS),
    FunctionRoute("/.netlify/functions/{name}/{rest:path}", invoke, methods=METHODS),
]
