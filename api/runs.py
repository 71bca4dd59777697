"""Runs: list, inspect, cancel, replay; and triggering a function with a JSON payload."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from jobs import clock, delayed, replays
from jobs.errors import InvalidInput
from jobs.event import payload_event
from jobs.lifecycle import new_run
from jobs.runs import RUN_ID_PATTERN, Status, Trigger, id_floor_at
from jobs.site import NAME_PATTERN

from . import streams
from .body import parse_json, parse_time, read_body
from .deps import Authorized, RunId, RuntimeDep, SingleValued
from .errors import responses
from .idempotency import request_idempotency
from .invoke import create
from .schemas import DATE_TIME, DURATION, LINE_NUMBER, SSE_EVENT, BulkReplayed, RunLogs, RunPage, RunView, answer

router = APIRouter(prefix="/api", tags=["runs"], dependencies=[Authorized, SingleValued], responses=responses(404))

StatusFilter = Status
TriggerFilter = Trigger


def _accepted(run: Any) -> JSONResponse:
    return JSONResponse(
        run.public(), status_code=202, headers={"location": f"/api/runs/{run.id}", "x-nf-request-id": run.id}
    )


_LINKS = {
    "GetRun": {"operationId": "get_run", "parameters": {"run_id": "$response.body#/id"}},
    "CancelRun": {"operationId": "cancel_run", "parameters": {"run_id": "$response.body#/id"}},
    "ReplayRun": {"operationId": "replay_run", "parameters": {"run_id": "$response.body#/id"}},
}


@router.post(
    "/functions/{name}/runs",
    status_code=202,
    summary="Trigger a function with a JSON payload; with delay or run_at, a delayed run that starts then",
    operation_id="trigger_function",
    response_model=None,
    responses={**responses(400, 404, 409, 413), 202: {**answer(RunView, "The run, durably queued"), "links": _LINKS}},
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": {}}}, "required": False}},
)
async def trigger(
    name: str,
    request: Request,
    runtime: RuntimeDep,
    delay: str | None = Query(
        None,
        description="Start this much later: seconds or 90s, 15m, 2h, 1d (up to 365d)",
        json_schema_extra={"pattern": DURATION},  # stated, not enforced here: the handler's 400 says the fix
    ),
    run_at: str | None = Query(
        None,
        description="Start at this ISO 8601 time (UTC without a zone); up to 365d ahead",
        json_schema_extra=DATE_TIME,
    ),
) -> Response:
    function = runtime.function(name)
    due = delayed.due_time(delay, run_at, clock.now())
    limits = function.limits("api")
    body = await read_body(request, function, limits.body_limit)
    payload = parse_json(body) if body.strip() else {}
    idempotency = request_idempotency(request, "api", body)
    run = new_run(function, "api", idempotency_key=idempotency.key if idempotency else None)
    if due is not None:
        delayed.delay(run, due)
    return _accepted(await create(runtime, run, payload_event(name, payload), idempotency))


@router.get(
    "/runs",
    summary="Runs, newest first",
    operation_id="list_runs",
    response_model=None,
    responses={200: answer(RunPage, "A page of runs")},
)
def list_runs(
    runtime: RuntimeDep,
    function: str | None = Query(None, pattern=NAME_PATTERN.pattern, max_length=200),
    status: StatusFilter | None = None,
    trigger: TriggerFilter | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, pattern=RUN_ID_PATTERN, description="The next_cursor of the previous page"),
    since: str | None = Query(
        None,
        description="Only runs created at or after (ISO 8601; UTC without a zone)",
        json_schema_extra={"format": "date-time"},
    ),
    until: str | None = Query(
        None,
        description="Only runs created before (ISO 8601; UTC without a zone)",
        json_schema_extra={"format": "date-time"},
    ),
) -> dict[str, Any]:
    upper = min([bound for bound in (cursor, _floor(until, "until")) if bound], default=None)
    runs, next_cursor = runtime.store.runs(
        function=function,
        status=status,
        trigger=trigger,
        limit=limit,
        cursor=upper,
        since=_floor(since, "since"),
    )
    return {"runs": [run.public() for run in runs], "next_cursor": next_cursor}


def _floor(value: str | None, name: str) -> str | None:
    """The id prefix of an ISO 8601 time (not a number: "0.5" is no time, whatever a parser might make of it)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 time like 2026-03-01T14:00:00Z, not {value[:40]!r}.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return id_floor_at(moment)
    except (OverflowError, ValueError, OSError):
        raise InvalidInput(f"{name} is out of range: use a time between 1970 and 9999.") from None


@router.api_route("/runs/replay", methods=["GET", "HEAD", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def replay_other_methods() -> Response:
    """``/api/runs/replay`` is the bulk replay, not a run id: other methods get 405, not a run lookup."""
    raise HTTPException(405, "Method Not Allowed: POST /api/runs/replay replays runs by filter.", {"Allow": "POST"})


@router.get(
    "/runs/{run_id}",
    summary="One run",
    operation_id="get_run",
    response_model=None,
    responses={200: answer(RunView, "The run"), **responses(422)},
)
def get_run(run_id: RunId, runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.store.get(run_id).public()


@router.get(
    "/runs/{run_id}/logs",
    summary="Captured log lines; ?follow=1 streams them live (SSE)",
    operation_id="run_logs",
    response_model=None,
    responses={
        200: {
            **answer(RunLogs, "The lines; with follow=1, Server-Sent Events: one event per line, then end"),
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        }
    },
)
async def get_logs(
    run_id: RunId,
    request: Request,
    runtime: RuntimeDep,
    follow: bool = Query(False, description="Stream lines as Server-Sent Events until the run ends"),
    last_event_id: str | None = Query(
        None,
        description="With follow: resume after this line number",
        json_schema_extra={"pattern": LINE_NUMBER, "maxLength": 12},
    ),
) -> Any:
    start = streams.start_line(request, last_event_id)  # checked either way: a malformed one is a 400
    if follow:
        return await streams.stream(runtime, run_id, start, with_state=False)
    await run_in_threadpool(runtime.store.get, run_id)
    lines = await run_in_threadpool(runtime.store.logs, run_id)
    dropped = await run_in_threadpool(runtime.client.get, runtime.store.keys.log_dropped(run_id))
    # "dropped": lines the run's output rate cap left out (``BACKBURNER_LOG_RATE``); the log says where.
    return {"run": run_id, "lines": lines, "dropped": int(dropped or 0)}


@router.post(
    "/runs/{run_id}/cancel",
    summary="Cancel a run",
    operation_id="cancel_run",
    response_model=None,
    responses={
        200: answer(RunView, "The run: cancelled, or still running until its worker stops it"),
        **responses(409),
    },
)
def cancel(run_id: RunId, runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.lifecycle.cancel(run_id).public()


class BulkReplay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    function: str | None = Field(None, pattern=NAME_PATTERN.pattern, max_length=200)
    status: Literal["failed", "cancelled"] = "failed"
    since: str | None = Field(
        None, description="Only runs created at or after (ISO 8601; UTC without a zone)", json_schema_extra=DATE_TIME
    )
    until: str | None = Field(
        None, description="Only runs created before (ISO 8601; UTC without a zone)", json_schema_extra=DATE_TIME
    )
    limit: int = Field(replays.DEFAULT_LIMIT, ge=1, le=replays.MAX_LIMIT)


@router.post(
    "/runs/replay",
    status_code=202,
    summary="Replay every run that matches (default: failed), newest first; each only once, ever",
    operation_id="replay_runs",
    response_model=None,
    responses={202: answer(BulkReplayed, "Each run replayed and its new run"), **responses(400, 404)},
)
def replay_many(body: BulkReplay, runtime: RuntimeDep) -> JSONResponse:
    if body.function is not None:
        runtime.function(body.function)  # FunctionNotFound (404): a misspelt name would replay nothing, silently
    since = parse_time(body.since, "since") if body.since is not None else None
    until = parse_time(body.until, "until") if body.until is not None else None
    filters = {"function": body.function, "status": body.status, "since": since, "until": until, "limit": body.limit}
    replayed = replays.replay_matching(runtime.store, **filters)
    return JSONResponse({"replayed": [{"of": of, "run": run.public()} for of, run in replayed]}, status_code=202)


@router.post(
    "/runs/{run_id}/replay",
    status_code=202,
    summary="Run again with the same payload, or with the JSON payload in the body (fixed input, say)",
    operation_id="replay_run",
    response_model=None,
    responses={202: answer(RunView, "The new run"), **responses(413)},
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": {}}}, "required": False}},
)
async def replay(run_id: RunId, request: Request, runtime: RuntimeDep) -> Response:
    original = await run_in_threadpool(runtime.store.get, run_id)
    function = runtime.function(original.function)
    body = await read_body(request, function, function.limits("api").body_limit)
    event = payload_event(function.name, parse_json(body)) if body.strip() else None
    return _accepted(await run_in_threadpool(replays.replay, runtime.store, run_id, event))
