"""The dashboard's pages: Overview, Functions, Runs and one Run. Reading only; actions are in ``actions``."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from jobs import clock, replays
from jobs.delivery.outbox import disabled_endpoints
from jobs.errors import RunNotFound
from jobs.execution.context import LOG_LINES_CAP
from jobs.log_tail import LogTail
from jobs.runs import ACTIVE, STATUSES, TRIGGERS, id_floor_at
from jobs.runtime import Runtime
from jobs.schedules.state import ScheduleState
from jobs.site import NAME_PATTERN

from ..functions import describe
from ..listeners import DashboardRoute
from ..schedules import registry, view
from . import charts, queries
from .web import PageError, friendly_errors, parse_moment, render, viewer

router = APIRouter(include_in_schema=False, route_class=DashboardRoute)

RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
PAGE_SIZE = 50
NOTICES = {
    "cancelled": "Run cancelled.",
    "cancel-requested": "Cancel requested: the worker stops the run within about a second.",
    "replayed": "Replay started: this is a new run with the same payload.",
    "replayed-edited": "Replay started: this is a new run with the edited payload.",
    "started": "Run started.",
    "paused": "Schedule paused: ticks will not fire until it is resumed.",
    "resumed": "Schedule resumed: it fires again from now on.",
    "webhook-enabled": "Webhook re-enabled: the next event is sent to it again.",
    "deleted": "Schedule deleted: it fires no more.",
    "created": "Schedule created: it fires from its next tick on (nothing runs for earlier ticks; backfill them).",
    "backfilled": "Backfill started: {count} run(s) created; {skipped} tick(s) skipped because they already had a run.",
    "replayed-many": "Replayed {count} failed run(s); each failed run is replayed only once.",
}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _notice(request: Request) -> str | None:
    """The notice a form action asked for, with its counts (whole numbers only, so nothing is injected)."""
    text = NOTICES.get(request.query_params.get("notice", ""))
    if text is None:
        return None
    counts = {key: request.query_params.get(key, "") for key in ("count", "skipped")}
    return text.format(**{key: value if value.isdigit() else "?" for key, value in counts.items()})


@router.get("/")
async def overview(request: Request) -> Response:
    seen = await viewer(request)
    runtime = _runtime(request)
    with friendly_errors():
        view = await run_in_threadpool(queries.overview, runtime, clock.now())
        site = await run_in_threadpool(lambda: runtime.site)
    specs = await run_in_threadpool(lambda: registry(runtime).all())
    upcoming = sorted((_next_run(spec.cron, spec.timezone), spec.name) for spec in specs)[:6]
    scale = max((d.p99 for d in view.durations), default=1.0)
    context = {
        "view": view,
        "chart": charts.runs_per_hour(view.hours),
        "bars": {d.function: charts.duration_bar(d.p50, d.p90, d.p99, scale) for d in view.durations},
        "upcoming": upcoming,
        "functions": len(site.functions),
    }
    return render(request, seen, "overview.html", context)


def _next_run(cron: str, timezone: str) -> str:
    from jobs.site.cron import parse_cron

    return clock.iso(parse_cron(cron, timezone).next_after(clock.now()))


@router.get("/schedules")
async def schedules(request: Request) -> Response:
    """Every schedule, from netlify.toml or the API, with its state and buttons (and backfill)."""
    seen = await viewer(request)
    runtime = _runtime(request)
    wanted = request.query_params.get("function") or None

    def load() -> list[dict[str, Any]]:
        specs = [spec for spec in registry(runtime).all() if wanted is None or spec.function == wanted]
        states = ScheduleState(runtime.client, runtime.store.keys).load([spec.name for spec in specs])
        return [view(runtime, spec, states[spec.name], 3) for spec in specs]

    with friendly_errors():
        listing = await run_in_threadpool(load)
    functions = sorted(runtime.site.functions)
    context = {"schedules": listing, "function": wanted, "functions": functions, "notice": _notice(request)}
    return render(request, seen, "schedules.html", context)


@router.get("/functions")
async def functions(request: Request) -> Response:
    seen = await viewer(request)
    runtime = _runtime(request)

    def load() -> dict[str, Any]:
        site = runtime.site
        ordered = sorted(site.functions.values(), key=lambda f: f.name)
        specs = registry(runtime).all()
        by_function: dict[str, list[Any]] = {}
        for spec in specs:
            by_function.setdefault(spec.function, []).append(spec)
        return {
            "functions": [(f, describe(f)) for f in ordered],
            "schedules": by_function,
            "states": ScheduleState(runtime.client, runtime.store.keys).load([spec.name for spec in specs]),
            "recent": queries.recent_by_function(runtime, [f.name for f in ordered]),
            "disabled": disabled_endpoints(
                runtime.client, runtime.store.keys, [f.name for f in ordered if f.on_success or f.on_failure]
            ),
        }

    with friendly_errors():
        context = await run_in_threadpool(load)
    return render(request, seen, "functions.html", {**context, "notice": _notice(request)})


def run_filters(request: Request) -> dict[str, Any]:
    """The Runs page's query string, checked: unknown values are an error page, not an empty list."""
    q = request.query_params
    filters = {key: q.get(key) or None for key in ("function", "status", "trigger", "range", "from", "to", "cursor")}
    if filters["function"] and not NAME_PATTERN.match(filters["function"]):
        raise PageError(400, "Bad filter", "A function name has only letters, digits, '_' and '-'.")
    for key, allowed in (("status", STATUSES), ("trigger", TRIGGERS), ("range", tuple(RANGES))):
        if filters[key] and filters[key] not in allowed:
            raise PageError(400, "Bad filter", f"{key} must be one of: {', '.join(allowed)}.")
    if filters["cursor"] and not filters["cursor"].isalnum():
        raise PageError(400, "Bad cursor", "The page cursor is a run id.")
    return filters


@router.get("/runs")
async def runs(request: Request) -> Response:
    seen = await viewer(request)
    runtime = _runtime(request)
    filters = run_filters(request)
    start, end = parse_moment(filters["from"], "from"), parse_moment(filters["to"], "to")
    if filters["range"]:
        start = clock.now() - RANGES[filters["range"]]
    cursor = filters["cursor"] or (id_floor_at(end) if end else None)
    since = id_floor_at(start) if start else None
    with friendly_errors():
        found, next_cursor = await run_in_threadpool(
            lambda: runtime.store.runs(
                function=filters["function"], status=filters["status"], trigger=filters["trigger"],
                limit=PAGE_SIZE, cursor=cursor, since=since,
            )
        )  # fmt: skip
    replayable = None
    if filters["status"] == "failed" and not filters["cursor"]:
        with friendly_errors():
            replayable = len(
                await run_in_threadpool(
                    lambda: replays.matching(runtime.store, function=filters["function"], since=start, until=end)
                )
            )
    site = runtime.site
    context = {
        "notice": _notice(request),
        "replayable": replayable,
        "since": clock.iso(start) if start else "",
        "until": clock.iso(end) if end else "",
        "runs": [run.public() for run in found],
        "next_cursor": next_cursor if len(found) == PAGE_SIZE else None,
        "filters": filters,
        "names": sorted(site.functions),
        "statuses": STATUSES,
        "triggers": TRIGGERS,
        "ranges": RANGES,
        "first_page": not filters["cursor"],
        "query": {k: v for k, v in filters.items() if v and k != "cursor"},
    }
    template = "_run_rows.html" if request.query_params.get("partial") else "runs.html"
    return render(request, seen, template, context)


def _payload(event: dict[str, Any]) -> Any:
    body = event.get("body")
    if not body:
        return None
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return body


@router.get("/runs/{run_id}")
async def run_page(run_id: str, request: Request) -> Response:
    seen = await viewer(request)
    runtime = _runtime(request)
    if not run_id.isalnum():
        raise PageError(404, "Not found", f"There is no run {run_id!r}.", "/runs")

    def load() -> dict[str, Any]:
        run = runtime.store.get(run_id).public()
        try:
            payload = _payload(runtime.store.event(run_id))
        except RunNotFound:  # the event went with retention
            payload = None
        chunk = LogTail(runtime.client, runtime.store.keys).read(run_id, 0, limit=LOG_LINES_CAP)
        return {"run": run, "payload": payload, "lines": chunk.lines, "next_line": chunk.next, "dropped": chunk.first}

    with friendly_errors(back="/runs"):
        context = await run_in_threadpool(load)
    run = context["run"]
    context.update(
        timeline=charts.attempts_timeline(run, clock.now()),
        active=run["status"] in ACTIVE,
        notice=_notice(request),
    )
    return render(request, seen, "run.html", context)
