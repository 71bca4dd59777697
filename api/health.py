"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from jobs import clock

from .deps import RuntimeDep
from .schemas import Health, Readiness, answer

router = APIRouter(tags=["health"])

#: How long readiness waits for Redis before answering 503: a probe wants an answer within seconds.
READY_TIMEOUT_S = 2.0


@router.get(
    "/healthz",
    summary="The process is up",
    operation_id="healthz",
    response_model=None,
    responses={200: answer(Health, "Up")},
)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Redis answers and workers are alive",
    operation_id="readyz",
    response_model=None,
    responses={
        200: answer(Readiness, "Redis answers and at least one worker is alive"),
        503: answer(Readiness, "Redis does not answer, or no worker is alive"),
    },
)
def readyz(runtime: RuntimeDep, request: Request) -> Any:
    settings = runtime.settings
    client = request.app.state.ready_redis  # gives up quickly: a probe wants its answer, not a write's 10 s
    try:  # one command, so one timeout at most
        cutoff = clock.now_ms() - int(settings.worker_timeout * 1000)
        workers = int(client.zcount(runtime.store.keys.workers, cutoff, "+inf"))
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "redis": str(exc), "workers": 0}, status_code=503)
    body = {"status": "ok" if workers else "no_workers", "redis": "ok", "workers": workers}
    return JSONResponse(body, status_code=200 if workers else 503)
