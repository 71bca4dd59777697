"""Schedule control: list schedules with their state, pause, resume and "run now"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from jobs import clock
from jobs.errors import RunNotFound
from jobs.runtime import Runtime
from jobs.schedule_runs import ScheduleNotFound, run_now
from jobs.schedule_state import ScheduleState, ScheduleStatus
from jobs.site import Function
from jobs.site.cron import parse_cron

from .deps import Authorized, RuntimeDep
from .errors import responses

router = APIRouter(prefix="/api/schedules", tags=["schedules"], dependencies=[Authorized], responses=responses(404))


def _iso(moment: datetime) -> str:
    """Fire times as in `backburner schedules --json`: UTC, whole seconds, ``Z``."""
    return clock.iso(moment).replace(".000Z", "Z")


def _scheduled(runtime: Runtime, name: str) -> Function:
    function = runtime.function(name)
    if not function.schedule:
        raise ScheduleNotFound(name)
    return function


def _view(runtime: Runtime, function: Function, status: ScheduleStatus, count: int) -> dict[str, Any]:
    cron = parse_cron(function.schedule or "", function.timezone)
    last_run = None
    if status.last_run:
        try:
            run = runtime.store.get(status.last_run)
            last_run = {"id": run.id, "status": run.status, "scheduled_for": run.scheduled_for}
        except RunNotFound:  # removed by retention
            pass
    return {
        "name": function.name,
        "schedule": function.schedule,
        "timezone": function.timezone,
        "paused": status.paused,
        "next_runs": [_iso(t) for t in cron.next_runs(clock.now(), count)],
        "overlap": function.overlap,
        "catchup": function.catchup,
        "last_run": last_run,
        "skipped": status.skipped,
        "last_skipped": clock.iso(status.last_skipped) if status.last_skipped else None,
    }


def _one(runtime: Runtime, function: Function) -> dict[str, Any]:
    return _view(runtime, function, ScheduleState(runtime.client, runtime.store.keys).get(function.name), 5)


@router.get(
    "",
    summary="Every schedule with its next runs, pause state, last run and skipped ticks",
    operation_id="list_schedules",
)
def list_schedules(runtime: RuntimeDep, count: int = Query(5, ge=0, le=100)) -> list[dict[str, Any]]:
    site = runtime.site
    functions = [function for function in site.functions.values() if function.schedule]
    statuses = ScheduleState(runtime.client, runtime.store.keys).load([function.name for function in functions])
    return [_view(runtime, function, statuses[function.name], count) for function in functions]


@router.get("/{name}/skips", summary="The newest ticks that did not run, and why", operation_id="schedule_skips")
def list_skips(name: str, runtime: RuntimeDep, limit: int = Query(20, ge=1, le=100)) -> list[dict[str, Any]]:
    function = _scheduled(runtime, name)
    return ScheduleState(runtime.client, runtime.store.keys).skips(function.name, limit)


@router.post("/{name}/pause", summary="Stop firing (kept in Redis; survives restarts)", operation_id="pause_schedule")
def pause(name: str, runtime: RuntimeDep) -> dict[str, Any]:
    function = _scheduled(runtime, name)
    ScheduleState(runtime.client, runtime.store.keys).pause(function.name)
    return _one(runtime, function)


@router.post(
    "/{name}/resume",
    summary="Fire again from now (ticks that fell in the pause do not run)",
    operation_id="resume_schedule",
)
def resume(name: str, runtime: RuntimeDep) -> dict[str, Any]:
    function = _scheduled(runtime, name)
    ScheduleState(runtime.client, runtime.store.keys).resume(function.name, clock.now())
    return _one(runtime, function)


@router.post(
    "/{name}/trigger",
    status_code=202,
    summary="Run now, as a scheduled run (even while paused)",
    operation_id="trigger_schedule",
    responses=responses(409),
)
async def trigger(name: str, runtime: RuntimeDep) -> JSONResponse:
    function = await run_in_threadpool(_scheduled, runtime, name)
    cron = parse_cron(function.schedule or "", function.timezone)
    state = ScheduleState(runtime.client, runtime.store.keys)
    run = await run_in_threadpool(run_now, runtime.store, state, function, cron, clock.now())
    return JSONResponse(
        run.public(), status_code=202, headers={"location": f"/api/runs/{run.id}", "x-nf-request-id": run.id}
    )
