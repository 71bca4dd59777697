"""The site's functions as the API shows them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from jobs.delivery.outbox import disabled_endpoints, enable_endpoints
from jobs.delivery.webhooks import display_url
from jobs.site import Function

from .deps import Authorized, RuntimeDep, SingleValued
from .errors import responses
from .schemas import FunctionView, WebhooksEnabled, answer

router = APIRouter(prefix="/api", tags=["functions"], dependencies=[Authorized, SingleValued], responses=responses())


def describe(function: Function, next_runs: int = 3, *, artifacts: str | None = None) -> dict[str, Any]:
    """Every effective setting of a function (defaults applied), in the listing shape shared with
    ``backburner functions --json`` (DESIGN.md section 7, which this extends). ``artifacts`` is the default
    store (BACKBURNER_ARTIFACTS, resolved), so ``destinations.artifacts`` says where files go even when the
    function does not set it."""
    limits = function.limits("schedule" if function.schedule and not function.background else "http")
    upcoming: list[str] = []
    if function.schedule:
        from jobs import clock
        from jobs.site.cron import parse_cron

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
        "memory_limit_bytes": function.memory_limit,
        "max_result_bytes": function.max_result,
        "concurrency": function.concurrency,  # None: no limit
        "overlap": function.overlap,
        "catchup": function.catchup,
        "catchup_window_s": function.catchup_window_s,
        "retention_s": function.retention_s,  # None: kept until deleted
        "routes": list(function.routes),
        "destinations": {
            "on_success": [display_url(url) for url in function.on_success],  # a URL's user info or query may
            "on_failure": [display_url(url) for url in function.on_failure],  # hold a credential
            "artifacts": function.artifacts or artifacts,
        },
    }


class Enable(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt "url" must not enable every URL

    url: str | None = None


@router.get(
    "/functions",
    summary="Every function of the site",
    operation_id="list_functions",
    response_model=None,
    responses={200: answer(list[FunctionView], "Every function with its effective settings")},
)
async def list_functions(runtime: RuntimeDep) -> list[dict[str, Any]]:
    site = await run_in_threadpool(lambda: runtime.site)
    senders = [f.name for f in site.functions.values() if f.on_success or f.on_failure]
    disabled = await run_in_threadpool(disabled_endpoints, runtime.client, runtime.store.keys, senders)
    listing = []
    for function in site.functions.values():
        entry = describe(function, artifacts=runtime.settings.artifacts_url)
        entry["destinations"]["disabled"] = [display_url(url) for url in disabled.get(function.name, [])]
        listing.append(entry)
    return listing


@router.post(
    "/functions/{name}/webhooks/enable",
    summary="Send to webhook URLs again after they answered 410 Gone (all of them, or the one in the body)",
    operation_id="enable_webhooks",
    response_model=None,
    responses={200: answer(WebhooksEnabled, "The URLs sent to again"), **responses(404, 409)},
)
def enable_webhooks(name: str, runtime: RuntimeDep, body: Enable | None = None) -> dict[str, Any]:
    runtime.function(name)  # 404 for a function the site does not have
    enabled = enable_endpoints(runtime.client, runtime.store.keys, name, body.url if body else None)
    return {"function": name, "enabled": enabled}
