"""The dashboard's buttons: run now (with a JSON payload), pause, resume, trigger a schedule, cancel, replay,
and re-enable a webhook that answered 410 Gone.

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

from jobs import clock
from jobs.delivery.outbox import enable_endpoints
from jobs.event import payload_event
from jobs.lifecycle import new_run
from jobs.runtime import Runtime
from jobs.schedule_runs import ScheduleNotFound, run_now
from jobs.schedule_state import ScheduleState
from jobs.site import Function
from jobs.site.cron import parse_cron

from ..listeners import DashboardRoute
from .web import PageError, checked_form, friendly_errors, redirect

router = APIRouter(include_in_schema=False, route_class=DashboardRoute)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _scheduled(runtime: Runtime, name: str) -> Function:
    function = runtime.function(name)
    if not function.schedule:
        raise ScheduleNotFound(name)
    return function


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
            return runtime.lifecycle.replay(run_id)
        function = runtime.function(runtime.store.get(run_id).function)
        payload = _payload(edited, function.limits("api").body_limit, back=f"/runs/{run_id}")
        return runtime.lifecycle.replay(run_id, payload_event(function.name, payload))

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


@router.post("/functions/{name}/{action}")
async def schedule_action(name: str, action: str, request: Request) -> Response:
    await checked_form(request)
    if action not in ("pause", "resume", "trigger"):
        raise PageError(404, "Not found", f"There is no schedule action {action!r}.", "/functions")
    runtime = _runtime(request)

    def act() -> str:
        function = _scheduled(runtime, name)
        state = ScheduleState(runtime.client, runtime.store.keys)
        if action == "pause":
            state.pause(function.name)
            return f"/functions?notice=paused#{function.name}"
        if action == "resume":
            state.resume(function.name, clock.now())
            return f"/functions?notice=resumed#{function.name}"
        cron = parse_cron(function.schedule or "", function.timezone)
        run = run_now(runtime.store, state, function, cron, clock.now())
        return f"/runs/{run.id}?notice=started"

    with friendly_errors(back="/functions"):
        target = await run_in_threadpool(act)
    return redirect(target)
