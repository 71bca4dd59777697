"""Schedules: list them with their state, create and delete them at run time, pause, resume, "run now", backfill.

Every schedule, from netlify.toml or created here (kept in Redis), is handled alike: the scheduler fires
each tick once across replicas, with catch-up, overlap, pause and skips (``jobs.schedules``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from jobs import clock
from jobs.errors import RunNotFound
from jobs.runtime import Runtime
from jobs.schedules.backfill import backfill as backfill_ticks
from jobs.schedules.registry import Schedules, describe
from jobs.schedules.state import ScheduleState, ScheduleStatus
from jobs.schedules.ticks import run_now
from jobs.site import NAME_PATTERN
from jobs.site.cron import parse_cron
from jobs.site.model import ScheduleSpec

from .body import parse_time
from .deps import Authorized, RuntimeDep, SingleValued
from .errors import responses
from .schemas import DATE_TIME, Backfilled, RunView, ScheduleView, Skip, answer

router = APIRouter(
    prefix="/api/schedules", tags=["schedules"], dependencies=[Authorized, SingleValued], responses=responses(404)
)


class NewSchedule(BaseModel):
    """A schedule to create. The schema states the rules; ``Schedules.create`` checks them (and what no schema can
    say: a cron that can fire, a real time zone), answering 400 with the rule and the fix."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="Unique among schedules: letters, digits, '_' and '-'",
        json_schema_extra={"pattern": NAME_PATTERN.pattern, "maxLength": 100},
    )
    function: str = Field(json_schema_extra={"pattern": NAME_PATTERN.pattern})
    cron: str = Field(description="Netlify's 5-field cron, or @hourly, @daily, ...", json_schema_extra={"minLength": 1})
    timezone: str = Field(
        "UTC", description="An IANA time zone, e.g. Europe/Berlin", json_schema_extra={"minLength": 1}
    )
    payload: dict[str, Any] = Field(default_factory=dict, description='Merged into the body: {"next_run", ...}')


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: str = Field(
        alias="from", description="First tick included (ISO 8601; UTC without a zone)", json_schema_extra=DATE_TIME
    )
    end: str = Field(
        alias="to", description="Ticks before this (ISO 8601; UTC without a zone)", json_schema_extra=DATE_TIME
    )


def registry(runtime: Runtime) -> Schedules:
    return Schedules(runtime.client, runtime.store.keys, lambda: runtime.site)


def _iso(moment: datetime) -> str:
    """Fire times as in `backburner schedules --json`: UTC, whole seconds, ``Z``."""
    return clock.iso(moment).replace(".000Z", "Z")


def view(runtime: Runtime, spec: ScheduleSpec, status: ScheduleStatus, count: int) -> dict[str, Any]:
    """One schedule as the API lists it: what it is, where it comes from, and its state."""
    cron = parse_cron(spec.cron, spec.timezone)
    function = runtime.site.functions.get(spec.function)
    last_run = None
    if status.last_run:
        try:
            run = runtime.store.get(status.last_run)
            last_run = {"id": run.id, "status": run.status, "scheduled_for": run.scheduled_for}
        except RunNotFound:  # removed by retention
            pass
    return {
        **describe(spec),
        "paused": status.paused,
        "next_runs": [_iso(t) for t in cron.next_runs(clock.now(), count)],
        "overlap": function.overlap if function else None,
        "catchup": function.catchup if function else None,
        "last_fired": _iso(status.last_fired) if status.last_fired else None,
        "last_run": last_run,
        "skipped": status.skipped,
        "last_skipped": clock.iso(status.last_skipped) if status.last_skipped else None,
    }


def _one(runtime: Runtime, spec: ScheduleSpec) -> dict[str, Any]:
    return view(runtime, spec, ScheduleState(runtime.client, runtime.store.keys).get(spec.name), 5)


@router.get(
    "",
    summary="Every schedule (netlify.toml's and the API's) with next runs, pause state, last run, skips",
    operation_id="list_schedules",
    response_model=None,
    responses={200: answer(list[ScheduleView], "Every schedule")},
)
def list_schedules(runtime: RuntimeDep, count: int = Query(5, ge=0, le=100)) -> list[dict[str, Any]]:
    specs = registry(runtime).all()
    statuses = ScheduleState(runtime.client, runtime.store.keys).load([spec.name for spec in specs])
    return [view(runtime, spec, statuses[spec.name], count) for spec in specs]


@router.post(
    "",
    status_code=201,
    summary="Create a schedule (kept in Redis; running schedulers pick it up within a second or two)",
    operation_id="create_schedule",
    response_model=None,
    responses={201: answer(ScheduleView, "The schedule, now firing"), **responses(400, 409, 413)},
)
def create_schedule(body: NewSchedule, runtime: RuntimeDep) -> JSONResponse:
    spec = registry(runtime).create(body.name, body.function, body.cron, body.timezone, body.payload, clock.now())
    return JSONResponse(_one(runtime, spec), status_code=201, headers={"location": f"/api/schedules/{spec.name}"})


@router.get(
    "/{name}",
    summary="One schedule",
    operation_id="get_schedule",
    response_model=None,
    responses={200: answer(ScheduleView, "The schedule")},
)
def get_schedule(name: str, runtime: RuntimeDep) -> dict[str, Any]:
    return _one(runtime, registry(runtime).get(name))


@router.delete(
    "/{name}",
    status_code=204,
    summary="Delete a schedule created through the API (409 for netlify.toml's)",
    operation_id="delete_schedule",
    responses=responses(409),
)
def delete_schedule(name: str, runtime: RuntimeDep) -> Response:
    registry(runtime).delete(name)
    return Response(status_code=204)


@router.get(
    "/{name}/skips",
    summary="The newest ticks that did not run, and why",
    operation_id="schedule_skips",
    response_model=None,
    responses={200: answer(list[Skip], "Skipped or missed ticks, newest first")},
)
def list_skips(name: str, runtime: RuntimeDep, limit: int = Query(20, ge=1, le=100)) -> list[dict[str, Any]]:
    spec = registry(runtime).get(name)
    return ScheduleState(runtime.client, runtime.store.keys).skips(spec.name, limit)


@router.post(
    "/{name}/pause",
    summary="Stop firing (kept in Redis; survives restarts)",
    operation_id="pause_schedule",
    response_model=None,
    responses={200: answer(ScheduleView, "The schedule, paused")},
)
def pause(name: str, runtime: RuntimeDep) -> dict[str, Any]:
    spec = registry(runtime).get(name)
    ScheduleState(runtime.client, runtime.store.keys).pause(spec.name)
    return _one(runtime, spec)


@router.post(
    "/{name}/resume",
    summary="Fire again from now (ticks that fell in the pause do not run)",
    operation_id="resume_schedule",
    response_model=None,
    responses={200: answer(ScheduleView, "The schedule, firing again")},
)
def resume(name: str, runtime: RuntimeDep) -> dict[str, Any]:
    spec = registry(runtime).get(name)
    ScheduleState(runtime.client, runtime.store.keys).resume(spec.name, clock.now())
    return _one(runtime, spec)


@router.post(
    "/{name}/trigger",
    status_code=202,
    summary="Run now, as a scheduled run (even while paused)",
    operation_id="trigger_schedule",
    response_model=None,
    responses={202: answer(RunView, "The scheduled run, durably queued"), **responses(409)},
)
async def trigger(name: str, runtime: RuntimeDep) -> JSONResponse:
    def start() -> Any:
        schedules = registry(runtime)
        spec = schedules.get(name)
        function = schedules.function(spec)
        cron = parse_cron(spec.cron, spec.timezone)
        state = ScheduleState(runtime.client, runtime.store.keys)
        return run_now(runtime.store, state, spec.name, function, cron, clock.now(), spec.payload)

    run = await run_in_threadpool(start)
    return JSONResponse(
        run.public(), status_code=202, headers={"location": f"/api/runs/{run.id}", "x-nf-request-id": run.id}
    )


@router.post(
    "/{name}/backfill",
    status_code=202,
    summary="One run per tick in [from, to), as each tick would have run; ticks that have a run are skipped",
    operation_id="backfill_schedule",
    response_model=None,
    responses={202: answer(Backfilled, "The runs made, and the ticks skipped"), **responses(400)},
)
def backfill(name: str, body: Range, runtime: RuntimeDep) -> JSONResponse:
    schedules = registry(runtime)
    spec = schedules.get(name)
    function = schedules.function(spec)
    cron = parse_cron(spec.cron, spec.timezone)
    start, end = parse_time(body.start, "from"), parse_time(body.end, "to")
    done = backfill_ticks(runtime.store, spec, function, cron, start, end, clock.now())
    answer = {"runs": [run.public() for run in done.runs], "skipped": [clock.iso(t) for t in done.skipped]}
    return JSONResponse(answer, status_code=202)
