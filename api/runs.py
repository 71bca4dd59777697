"""Runs: list, inspect, cancel, replay; and triggering a function with a JSON payload."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from jobs.errors import InvalidInput
from jobs.event import payload_event
from jobs.lifecycle import new_run
from jobs.runs import Status, Trigger, id_floor_at

from . import streams
from .body import read_body
from .deps import Authorized, RuntimeDep

router = APIRouter(prefix="/api", tags=["runs"], dependencies=[Authorized])

StatusFilter = Status
TriggerFilter = Trigger


def _accepted(run: Any) -> JSONResponse:
    return JSONResponse(
        run.public(), status_code=202, headers={"location": f"/api/runs/{run.id}", "x-nf-request-id": run.id}
    )


def _payload(body: bytes) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"The payload is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None


@router.post("/functions/{name}/runs", status_code=202, summary="Trigger a function with a JSON payload")
async def trigger(name: str, request: Request, runtime: RuntimeDep) -> Response:
    function = runtime.function(name)
    limits = function.limits("api")
    body = await read_body(request, function, limits.body_limit)
    payload = _payload(body) if body.strip() else {}
    key = request.headers.get("idempotency-key")
    run = new_run(function, "api", idempotency_key=key)
    run, _ = await runtime.store.create_async(run, payload_event(name, payload), idempotency_key=key)
    return _accepted(run)


@router.get("/runs", summary="Runs, newest first")
def list_runs(
    runtime: RuntimeDep,
    function: str | None = None,
    status: StatusFilter | None = None,
    trigger: TriggerFilter | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, description="The next_cursor of the previous page"),
    since: datetime | None = Query(None, description="Only runs created at or after (ISO 8601; UTC without a zone)"),
    until: datetime | None = Query(None, description="Only runs created before (ISO 8601; UTC without a zone)"),
) -> dict[str, Any]:
    upper = min([bound for bound in (cursor, id_floor_at(until) if until else None) if bound], default=None)
    runs, next_cursor = runtime.store.runs(
        function=function,
        status=status,
        trigger=trigger,
        limit=limit,
        cursor=upper,
        since=id_floor_at(since) if since else None,
    )
    return {"runs": [run.public() for run in runs], "next_cursor": next_cursor}


@router.get("/runs/{run_id}", summary="One run")
def get_run(run_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.store.get(run_id).public()


@router.get("/runs/{run_id}/logs", summary="Captured log lines; ?follow=1 streams them live (SSE)")
async def get_logs(
    run_id: str,
    request: Request,
    runtime: RuntimeDep,
    follow: bool = Query(False, description="Stream lines as Server-Sent Events until the run ends"),
    last_event_id: str | None = Query(None, description="With follow: resume after this line number"),
) -> Any:
    if follow:
        return await streams.stream(runtime, run_id, streams.start_line(request, last_event_id), with_state=False)
    await run_in_threadpool(runtime.store.get, run_id)
    return {"run": run_id, "lines": await run_in_threadpool(runtime.store.logs, run_id)}


@router.post("/runs/{run_id}/cancel", summary="Cancel a run")
def cancel(run_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.lifecycle.cancel(run_id).public()


@router.post(
    "/runs/{run_id}/replay",
    status_code=202,
    summary="Run again with the same payload, or with the JSON payload in the body (fixed input, say)",
)
async def replay(run_id: str, request: Request, runtime: RuntimeDep) -> Response:
    original = await run_in_threadpool(runtime.store.get, run_id)
    function = runtime.function(original.function)
    body = await read_body(request, function, function.limits("api").body_limit)
    event = payload_event(function.name, _payload(body)) if body.strip() else None
    return _accepted(await run_in_threadpool(runtime.lifecycle.replay, run_id, event))
