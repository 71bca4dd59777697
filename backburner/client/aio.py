"""``AsyncClient``: ``Client``'s methods as coroutines (httpx.AsyncClient), for asyncio web apps."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ..sse import Event, Parser
from . import _calls as calls
from .errors import ApiError, Unreachable, api_error
from .models import Backfill, Replayed, Run, Schedule
from .sync import _NotAStream

Progress = Callable[[int, int | None], None]
T = TypeVar("T")


class AsyncClient:
    """``Client`` for asyncio: the same methods and errors, awaited (``runs``, ``events`` and ``follow_logs`` are
    async iterators).

    File writes of ``download`` happen in the event loop's thread pool, so a large artifact does not block it.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = calls.base_url(url)
        self.http = http or httpx.AsyncClient(base_url=self.url, headers=calls.auth_headers(token), timeout=timeout)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.aclose()

    # -- runs ----------------------------------------------------------------------------------

    async def trigger(
        self,
        function: str,
        payload: Any = None,
        *,
        idempotency_key: str | None = None,
        delay: timedelta | float | str | None = None,
        run_at: datetime | str | None = None,
    ) -> Run:
        return await self._json(calls.trigger(function, payload, idempotency_key, delay, run_at), Run.from_json)

    async def get(self, run_id: str) -> Run:
        return await self._json(calls.Call("GET", f"/api/runs/{calls.segment(run_id)}"), Run.from_json)

    async def wait(self, run_id: str, timeout: float | None = None) -> Run:  # noqa: ASYNC109 - the same as Client.wait
        """As ``Client.wait``: the final run, following its event stream (polling if streams keep failing)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        failures, pause, last_line = 0, calls.POLL_FIRST_S, None
        while True:
            run = await self._look(run_id, deadline)
            if run.terminal:
                return run
            left = calls.left(deadline, run_id)
            if failures < calls.STREAM_FAILURES:
                try:
                    final, last_line = await self._stream_until_final(run_id, deadline, last_line)
                except (httpx.TransportError, _NotAStream):
                    failures += 1
                    continue
                except ApiError as exc:  # refused (a proxy's 403 or 502 page): streams do not get through
                    if exc.status in calls.STREAM_FATAL:
                        raise
                    failures = calls.STREAM_FAILURES
                    continue
                failures = 0
                if final is not None:
                    return final
                continue
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, calls.POLL_MAX_S)

    async def _look(self, run_id: str, deadline: float | None) -> Run:
        """``get`` within what is left before ``deadline``: TimeoutError, not Unreachable after the client's
        timeout, when the API does not answer in time."""
        call = calls.Call("GET", f"/api/runs/{calls.segment(run_id)}")
        try:
            return await self._json(call, Run.from_json, calls.within(self.http.timeout, deadline, run_id))
        except Unreachable:
            calls.left(deadline, run_id)
            raise

    async def _stream_until_final(
        self, run_id: str, deadline: float | None, last_line: str | None
    ) -> tuple[Run | None, str | None]:
        try:
            async with self._stream(*calls.events(run_id, deadline, last_line, self.http.timeout)) as events:
                async for event in events:
                    done, final, last_line = calls.follow(event, last_line)
                    if done:
                        return final, last_line
                    calls.left(deadline, run_id)
        except httpx.TimeoutException:
            calls.left(deadline, run_id)
        return None, last_line

    async def runs(
        self,
        function: str | None = None,
        status: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        *,
        trigger: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Run]:
        filters = {"function": function, "status": status, "trigger": trigger, "since": since, "until": until}
        cursor, seen = None, 0
        while True:
            runs, cursor = await self._json(calls.runs_page(filters, calls.PAGE_SIZE, cursor), calls.page)
            for run in runs:
                yield run
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if not cursor or not runs:
                return

    async def cancel(self, run_id: str) -> Run:
        return await self._json(calls.Call("POST", f"/api/runs/{calls.segment(run_id)}/cancel"), Run.from_json)

    async def replay(self, run_id: str, payload: Any = calls.UNSET) -> Run:
        return await self._json(calls.replay(run_id, payload), Run.from_json)

    async def replay_failed(
        self,
        function: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
    ) -> list[Replayed]:
        return await self._json(calls.replay_failed(function, since, until, limit), calls.replayed)

    # -- artifacts -----------------------------------------------------------------------------

    async def download(
        self, run_id: str, name: str, dest: str | os.PathLike[str] | None = None, *, progress: Progress | None = None
    ) -> Path:
        return await self._save(calls.artifact_path(run_id, name), calls.target(name, dest), progress)

    async def latest_artifact(
        self, function: str, name: str, dest: str | os.PathLike[str] | None = None, *, progress: Progress | None = None
    ) -> Path:
        return await self._save(calls.latest_path(function, name), calls.target(name, dest), progress)

    async def _save(self, path: str, dest: calls.Destination, progress: Progress | None) -> Path:
        target, part, saved = dest.path, calls.partial(dest.path), False
        try:
            async with self.http.stream("GET", path, follow_redirects=True) as response:
                await _check(response)
                total = int(response.headers.get("content-length", 0)) or None
                done = 0
                out = await asyncio.to_thread(part.open, "wb")
                try:
                    if progress is not None:  # the file is open: a progress bar may show from here
                        progress(done, total)
                    async for chunk in response.aiter_bytes():
                        await asyncio.to_thread(out.write, chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
                finally:
                    await asyncio.to_thread(out.close)
            await asyncio.to_thread(part.replace, target)
            saved = True
        except httpx.TransportError as exc:
            raise calls.unreached(self.url, exc) from None
        finally:
            part.unlink(missing_ok=True)
            if not saved:
                dest.discard()
        return target

    # -- schedules -----------------------------------------------------------------------------

    async def schedules(self) -> list[Schedule]:
        return await self._json(calls.Call("GET", "/api/schedules"), calls.schedules)

    async def create_schedule(
        self, name: str, function: str, cron: str, *, timezone: str = "UTC", payload: dict[str, Any] | None = None
    ) -> Schedule:
        return await self._json(calls.create_schedule(name, function, cron, timezone, payload), Schedule.from_json)

    async def delete_schedule(self, name: str) -> None:
        await self._send(calls.Call("DELETE", f"/api/schedules/{calls.segment(name)}"))

    async def pause_schedule(self, name: str) -> Schedule:
        return await self._json(calls.Call("POST", f"/api/schedules/{calls.segment(name)}/pause"), Schedule.from_json)

    async def resume_schedule(self, name: str) -> Schedule:
        return await self._json(calls.Call("POST", f"/api/schedules/{calls.segment(name)}/resume"), Schedule.from_json)

    async def trigger_schedule(self, name: str) -> Run:
        return await self._json(calls.Call("POST", f"/api/schedules/{calls.segment(name)}/trigger"), Run.from_json)

    async def backfill(self, schedule: str, start: datetime | str, end: datetime | str) -> Backfill:
        return await self._json(calls.backfill(schedule, start, end), Backfill.from_json)

    # -- live views and raw calls ------------------------------------------------------------------

    def events(self, run_id: str) -> AsyncIterator[Event]:
        """The run's events until ``end``, resuming a stream that broke off (polling where streams are refused)."""
        return self._follow(f"/api/runs/{calls.segment(run_id)}/events", run_id, with_state=True)

    def follow_logs(self, run_id: str) -> AsyncIterator[Event]:
        """The run's log lines as ``line`` events (then ``end``), from the first one, until it ends (polling
        where streams are refused, as ``events``)."""
        return self._follow(f"/api/runs/{calls.segment(run_id)}/logs?follow=1", run_id, with_state=False)

    async def logs(self, run_id: str) -> list[dict[str, Any]]:
        return await self._json(calls.Call("GET", f"/api/runs/{calls.segment(run_id)}/logs"), calls.lines)

    async def invoke(
        self, function: str, body: bytes | str = b"", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """As ``Client.invoke``: POST to the function's Netlify URL and return the response as it is."""
        try:
            response = await self.http.post(calls.function_path(function), content=body, headers=headers)
        except httpx.TransportError as exc:
            raise calls.unreached(self.url, exc, "POST") from None
        return calls.invoked(response)

    async def _follow(self, path: str, run_id: str, *, with_state: bool) -> AsyncIterator[Event]:
        """SSE from ``path`` until ``end``; a dropped stream resumes after the last line (``Last-Event-ID``)."""
        last_id: str | None = None
        failures = 0
        while True:
            headers = {"last-event-id": last_id} if last_id is not None else {}
            try:
                async with self._stream(path, headers, httpx.Timeout(30.0, read=calls.STREAM_READ_S)) as events:
                    async for event in events:
                        failures = 0
                        last_id = event.id if event.id is not None else last_id
                        yield event
                        if event.event == "end":
                            return
            except httpx.TransportError as exc:
                failures += 1
                if failures > 5:
                    raise calls.unreached(self.url, exc) from None
                await asyncio.sleep(min(0.25 * 2**failures, 5.0))
            except (ApiError, _NotAStream) as exc:
                if isinstance(exc, ApiError) and exc.status in calls.STREAM_FATAL:
                    raise
                poll = calls.Poll(with_state, seen=int(last_id) + 1 if last_id else 0)
                while not poll.ended:  # the run's events from looking at it every 0.25-2 s
                    run = await self._json(calls.Call("GET", f"/api/runs/{calls.segment(run_id)}"), calls.run_json)
                    for event in poll.events(run, await self.logs(run_id)):
                        yield event
                    if not poll.ended:
                        await asyncio.sleep(poll.pause)
                return

    @contextlib.asynccontextmanager
    async def _stream(
        self, path: str, headers: dict[str, str], limits: httpx.Timeout
    ) -> AsyncIterator[AsyncIterator[Event]]:
        async with self.http.stream("GET", path, headers=headers, timeout=limits) as response:
            await _check(response)
            if not calls.is_stream(response):
                raise _NotAStream(response.headers.get("content-type", ""))

            async def events() -> AsyncIterator[Event]:
                parser = Parser()
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event

            yield events()

    async def _send(self, call: calls.Call, limits: httpx.Timeout | None = None) -> httpx.Response:
        try:
            response = await self.http.request(
                call.method, call.path, **call.kwargs(), timeout=limits or httpx.USE_CLIENT_DEFAULT
            )
        except httpx.TransportError as exc:
            raise calls.unreached(self.url, exc, call.method) from None
        await _check(response)
        return response

    async def _json(self, call: calls.Call, read: Callable[[Any], T], limits: httpx.Timeout | None = None) -> T:
        """The answer's JSON as ``read`` makes it: BadAnswer when it is not JSON of that shape (a proxy's page)."""
        return calls.decode(await self._send(call, limits), read)


async def _check(response: httpx.Response) -> None:
    if response.status_code >= 400:
        with contextlib.suppress(httpx.HTTPError):
            await response.aread()
        error: ApiError | None = api_error(response)
        if error is not None:
            raise error
