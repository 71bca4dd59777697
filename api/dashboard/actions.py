"""The dashboard's buttons: run now (with a JSON payload), create, pause, resume, trigger, backfill and delete a
schedule, cancel, replay (one run, or every failed run of a filter), and re-enable a webhook that answered 410 Gone.

Every one is a plain HTML form post (so it works without JavaScript), checked by ``web.checked_form``
(logged in, same site, this session's CSRF token), and answered with a 303 to the page that shows the
result. They call the same ``jobs`` functions as the JSON API, so both behave alike.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from jobs import clock, replays
from jobs.delivery.outbox import enable_endpoints
from jobs.event import payload_event
from jobs.lifecycle import new_run
from jobs.runtime import Runtime
from jobs.schedules.backfill import backfill
from jobs.schedules.state import ScheduleState
from jobs.schedules.ticks import run_now
from jobs.site.cron import parse_cron

from ..listeners import DashboardRoute
from ..schedules import registry
from .web import PageError, checked_form, friendly_errors, parse_moment, redirect

router = APIRouter(include_in_schema=False, route_class=DashboardRoute)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.post("/runs/{run_id}/cancel")
async def cancel(run_id: str, request: Request) -> Response:
    await checked_form(request)
    runtime = _runtime(request)
    with friendly_errors(back=f"/runs/{run_id}"):
        run = await run_in_threadpool(runtime.lifecycle.cancel, run_id)
    notice = "cancelled" if run.status == "cancelled" else "cancel-requested"
    return redirect(f"/runs/{run.id}?notice={notice}")


@router.post("/runs/{run_id}/replay")
async def replay(run_id: str, request: Request) -> Response:
    """Replay with the same payload, or with the edited one from the form's ``payload`` field."""
    _, form = await checked_form(request)
    runtime = _runtime(request)
    edited = form.get("payload")

    def start() -> Any:
        if edited is None:
            return replays.replay(runtime.store, run_id)
        function = runtime.function(runtime.store.get(run_id).function)
        payload = _payload(edited, function.limits("api").body_limit, back=f"/runs/{run_id}")
        return replays.replay(runtime.store, run_id, payload_event(function.name, payload))

    with friendly_errors(back=f"/runs/{run_id}"):
        run = await run_in_threadpool(start)
    return redirect(f"/runs/{run.id}?notice={'replayed' if edited is None else 'replayed-edited'}")


def _payload(text: str, limit: int, back: str = "/functions") -> Any:
    if len(text.encode()) > limit:
        raise PageError(413, "Payload too large", f"The payload is over this function's limit of {limit} bytes.", back)
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise PageError(
            422, "Payload is not JSON", f"{exc.msg} at line {exc.lineno}, column {exc.colno}.", back
        ) from None


@router.post("/functions/{name}/run")
async def run_function(name: str, request: Request) -> Response:
    _, form = await checked_form(request)
    runtime = _runtime(request)

    def start() -> str:
        function = runtime.function(name)
        payload = _payload(form.get("payload", ""), function.limits("api").body_limit)
        run, _ = runtime.store.create(new_run(function, "api"), payload_event(function.name, payload))
        return run.id

    with friendly_errors(back="/functions"):
        run_id = await run_in_threadpool(start)
    return redirect(f"/runs/{run_id}?notice=started")


@router.post("/functions/{name}/webhooks/enable")
async def enable_webhook(name: str, request: Request) -> Response:
    _, form = await checked_form(request)
    runtime = _runtime(request)

    def enable() -> None:
        runtime.function(name)
        enable_endpoints(runtime.client, runtime.store.keys, name, form.get("url") or None)

    with friendly_errors(back="/functions"):
        await run_in_threadpool(enable)
    return redirect(f"/functions?notice=webhook-enabled#{name}")


@router.post("/runs/replay-failed")
async def replay_failed(request: Request) -> Response:
    """Replay every failed run the Runs page's filters select (function, time range), each once."""
    _, form = await checked_form(request)
    runtime = _runtime(request)
    since, until = parse_moment(form.get("since"), "since"), parse_moment(form.get("until"), "until")
    filters = {"function": form.get("function") or None, "since": since, "until": until}
    with friendly_errors(back="/runs?status=failed"):
        replayed = await run_in_threadpool(lambda: replays.replay_matching(runtime.store, **filters))
    return redirect(f"/runs?trigger=replay&notice=replayed-many&count={len(replayed)}")


@router.post("/schedules")
async def create_schedule(request: Request) -> Response:
    """A schedule kept in Redis, checked and stored exactly as ``POST /api/schedules`` does."""
    _, form = await checked_form(request)
    runtime = _runtime(request)

    def create() -> str:
        function = runtime.function(form.get("function", ""))
        payload = _payload(form.get("payload", ""), function.limits("schedule").body_limit, back="/schedules")
        name, cron, timezone = (form.get(key, "").strip() for key in ("name", "cron", "timezone"))
        spec = registry(runtime).create(name, function.name, cron, timezone or "UTC", payload, clock.now())
        return f"/schedules?notice=created#{spec.name}"

    with friendly_errors(back="/schedules"):
        target = await run_in_threadpool(create)
    return redirect(target)


@router.post("/functions/{name}/{action}")
async def function_schedule_action(name: str, action: str, request: Request) -> Response:
    """The Functions page's buttons act on the function's own schedule (named after it)."""
    return await _schedule_action(name, action, request, "/functions")


@router.post("/schedules/{name}/{action}")
async def schedule_action(name: str, action: str, request: Request) -> Response:
    return await _schedule_action(name, action, request, "/schedules")


async def _schedule_action(name: str, action: str, request: Request, back: str) -> Response:
    _, form = await checked_form(request)
    if action not in ("pause", "resume", "trigger", "delete", "backfill"):
        raise PageError(404, "Not found", f"There is no schedule action {action!r}.", back)
    runtime = _runtime(request)
    start, end = parse_moment(form.get("from"), "from"), parse_moment(form.get("to"), "to")

    def act() -> str:
        schedules = registry(runtime)
        spec = schedules.get(name)
        state = ScheduleState(runtime.client, runtime.store.keys)
        if action == "pause":
            state.pause(spec.name)
            return f"{back}?notice=paused#{spec.name}"
        if action == "resume":
            state.resume(spec.name, clock.now())
            return f"{back}?notice=resumed#{spec.name}"
        if action == "delete":
            schedules.delete(spec.name)
            return "/schedules?notice=deleted"
        function = schedules.function(spec)
        cron = parse_cron(spec.cron, spec.timezone)
        if action == "backfill":
            if start is None or end is None:
                raise PageError(400, "Backfill needs a range", "Give both From and To (UTC).", back)
            done = backfill(runtime.store, spec, function, cron, start, end, clock.now())
            counts = f"count={len(done.runs)}&skipped={len(done.skipped)}"
            return f"/runs?function={function.name}&trigger=backfill&notice=backfilled&{counts}"
        run = run_now(runtime.store, state, spec.name, function, cron, clock.now(), spec.payload)
        return f"/runs/{run.id}?notice=started"

    with friendly_errors(back=back):
        target = await run_in_threadpool(act)
    return redirect(target)
