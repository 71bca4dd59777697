"""The site's functions as the API shows them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from jobs.site import Function

from .deps import Authorized, RuntimeDep

router = APIRouter(prefix="/api", tags=["functions"], dependencies=[Authorized])


def describe(function: Function, next_runs: int = 3) -> dict[str, Any]:
    """The listing shape shared with ``backburner functions --json`` (DESIGN.md section 7)."""
    limits = function.limits("schedule" if function.schedule and not function.background else "http")
    upcoming: list[str] = []
    if function.schedule:
        from jobs import clock
        from jobs.cron import parse_cron

        cron = parse_cron(function.schedule, function.timezone)
        upcoming = [clock.iso(t) for t in cron.next_runs(clock.now(), next_runs)]
    return {
        "name": function.name,
        "kind": function.kind,
        "schedule": function.schedule,
        "timezone": function.timezone,
        "next_runs": upcoming,
        "time_limit_s": limits.time_limit_s,
        "retry_delays_s": list(limits.retry_delays_s),
        "body_limit_bytes": limits.body_limit,
        "destinations": {
            "on_success": list(function.on_success),
            "on_failure": list(function.on_failure),
            "artifacts": function.artifacts,
        },
    }


@router.get("/functions", summary="Every function of the site")
async def list_functions(runtime: RuntimeDep) -> list[dict[str, Any]]:
    site = await run_in_threadpool(runtime.refresh_site)
    return [describe(function) for function in site.functions.values()]
