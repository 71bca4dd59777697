"""Live runs over Server-Sent Events: ``/api/runs/{id}/logs?follow=1`` and ``/api/runs/{id}/events``.

Both poll Redis every ``POLL_S`` through ``jobs.log_tail`` (one script call: the new lines from the last
line number, plus whether the run is still active), so a line or a progress update reaches the client
within ~0.25 s of being written, and an idle follower costs one small round trip per poll. Pub/sub would
shave that to a few milliseconds, but needs a connection per follower and a replay path anyway; a quarter
of a second is well inside the "within a second" promise.

Events (``text/event-stream``)::

    event: line    id: <line number>   data: {"n", "t", "attempt", "stream", "level", "line"}
    event: gap                         data: {"dropped": n}   (resumed from lines the cap removed)
    event: run                         data: the run (as GET /api/runs/{id}); /events only, on every change
    event: end                         data: {"status", "lines"}; then the server closes the stream

Line numbers count from 0 and never shift (the capped list drops the oldest, numbers stay). A client
resumes with ``Last-Event-ID: <last line number seen>`` (EventSource does this by itself on reconnect) or
``?last_event_id=`` on the first request. A stream that has not ended after ``STREAM_MAX_S`` is closed
without ``end``; the client simply resumes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from jobs.errors import InvalidInput, RunNotFound
from jobs.log_tail import LogTail
from jobs.runtime import Runtime

from .deps import Authorized, RunId, RuntimeDep, SingleValued
from .errors import responses
from .schemas import LINE_NUMBER, SSE_EVENT

router = APIRouter(prefix="/api", tags=["runs"], dependencies=[Authorized, SingleValued], responses=responses(404))

#: Seconds between polls of Redis while nothing new arrives.
POLL_S = 0.25
#: Seconds between keep-alive comments, so proxies do not close a quiet stream.
KEEPALIVE_S = 15.0
#: A stream closes after this long (without ``end``) and the client resumes with Last-Event-ID, as EventSource
#: and the CLI do by themselves: a restarting API then waits at most this long for open streams.
STREAM_MAX_S = 30.0
HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def sse(event: str, data: Any, event_id: int | None = None) -> str:
    """One SSE message; ``data`` is JSON on one line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def start_line(request: Request, last_event_id: str | None) -> int:
    """The first line to send: after ``Last-Event-ID`` (header, else query), else from the beginning."""
    raw = request.headers.get("last-event-id") or last_event_id
    if raw is None or raw == "" or raw == "-1":  # -1: no line seen yet (the dashboard's first request)
        return 0
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
        raise InvalidInput(f"Last-Event-ID must be a line number (-1 or more), not {raw[:40]!r}.")
    return int(raw) + 1


async def follow(runtime: Runtime, run_id: str, start: int, *, with_state: bool) -> AsyncIterator[str]:
    """Lines from ``start`` on (and run changes with ``with_state``) until the run ends and every line is sent."""
    tail = LogTail(runtime.client, runtime.store.keys)
    next_line, last_state, last_sent = start, None, time.monotonic()
    close_at = last_sent + STREAM_MAX_S
    yield "retry: 2000\n\n"
    while True:
        chunk = await run_in_threadpool(tail.read, run_id, next_line, state=with_state)
        out: list[str] = []
        if chunk.dropped:
            out.append(sse("gap", {"dropped": chunk.dropped}))
        out.extend(sse("line", {"n": n, **entry}, n) for n, entry in chunk.lines)
        next_line = chunk.next
        if with_state and chunk.state != last_state:
            last_state = chunk.state
            try:
                run = await run_in_threadpool(runtime.store.get, run_id)
                out.append(sse("run", run.public()))
            except RunNotFound:
                pass
        if not chunk.active and chunk.caught_up:
            status: str
            try:
                status = (await run_in_threadpool(runtime.store.get, run_id)).status
            except RunNotFound:  # removed by retention while followed
                status = "deleted"
            out.append(sse("end", {"status": status, "lines": chunk.total}))
            yield "".join(out)
            return
        if out:
            yield "".join(out)
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent > KEEPALIVE_S:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        if chunk.caught_up:
            if time.monotonic() > close_at:
                return
            await asyncio.sleep(POLL_S)


class EventStream(StreamingResponse):
    """A Server-Sent Events answer (its media type is also what the OpenAPI document shows)."""

    media_type = "text/event-stream"


async def stream(runtime: Runtime, run_id: str, start: int, *, with_state: bool) -> StreamingResponse:
    """The SSE response; a run that does not exist is a plain 404 before any streaming starts."""
    await run_in_threadpool(runtime.store.get, run_id)
    return EventStream(follow(runtime, run_id, start, with_state=with_state), headers=HEADERS)


@router.get(
    "/runs/{run_id}/events",
    summary="Live run: status, progress and log lines (SSE)",
    operation_id="run_events",
    response_class=EventStream,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
            "description": "Server-Sent Events: the run on every change (run), its log lines (log), then end",
        },
        **responses(404, spelled=True),
    },
)
async def run_events(
    run_id: RunId,
    request: Request,
    runtime: RuntimeDep,
    last_event_id: str | None = Query(
        None,
        description="Resume after this line number (or send Last-Event-ID)",
        json_schema_extra={"pattern": LINE_NUMBER, "maxLength": 12},
    ),
) -> StreamingResponse:
    return await stream(runtime, run_id, start_line(request, last_event_id), with_state=True)
