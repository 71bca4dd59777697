"""``Client``: the management API from Python code, blocking (httpx). ``aio.AsyncClient`` is its twin."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ..sse import Event, Parser
from . import _calls as calls
from .errors import ApiError, Unreachable, api_error
from .models import Backfill, Replayed, Run, Schedule

Progress = Callable[[int, int | None], None]
T = TypeVar("T")


class Client:
    """A client for one Backburner API.

    ``url`` defaults to ``BACKBURNER_URL``, else ``http://127.0.0.1:8888``; ``token`` to
    ``BACKBURNER_API_TOKEN``. Use it as a context manager, or call ``close()``. Every method raises
    ``ApiError`` (or ``NotFound``, ``Unauthorized``, ``Conflict``, ``Unreachable``) when the API says no.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = calls.base_url(url)
        self.http = http or httpx.Client(base_url=self.url, headers=calls.auth_headers(token), timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- runs ----------------------------------------------------------------------------------

    def trigger(
        self,
        function: str,
        payload: Any = None,
        *,
        idempotency_key: str | None = None,
        delay: timedelta | float | str | None = None,
        run_at: datetime | str | None = None,
    ) -> Run:
        """Start a run of ``function`` with a JSON payload; with ``delay`` or ``run_at`` it waits until then.

        ``idempotency_key`` (1-255 printable ASCII characters, else ValueError before sending) makes repeated
        calls within 24 h return the same run."""
        return self._json(calls.trigger(function, payload, idempotency_key, delay, run_at), Run.from_json)

    def get(self, run_id: str) -> Run:
        return self._json(calls.Call("GET", f"/api/runs/{calls.segment(run_id)}"), Run.from_json)

    def wait(self, run_id: str, timeout: float | None = None) -> Run:
        """The run once it succeeded, failed or was cancelled; raises TimeoutError after ``timeout`` seconds.

        Follows the run's event stream (no polling while it works); if streams are refused (a proxy's 403 or
        502 page) or keep breaking off (a proxy that buffers them), it looks at the run every 0.25-2 s instead.
        A 401 or 429 on the stream raises, as on any call.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        failures, pause, last_line = 0, calls.POLL_FIRST_S, None
        while True:
            run = self._look(run_id, deadline)
            if run.terminal:
                return run
            left = calls.left(deadline, run_id)
            if failures < calls.STREAM_FAILURES:
                try:
                    final, last_line = self._stream_until_final(run_id, deadline, last_line)
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
            time.sleep(min(pause, left))
            pause = min(pause * 2, calls.POLL_MAX_S)

    def _look(self, run_id: str, deadline: float | None) -> Run:
        """``get`` within what is left before ``deadline``: TimeoutError, not Unreachable after the client's
        timeout, when the API does not answer in time."""
        call = calls.Call("GET", f"/api/runs/{calls.segment(run_id)}")
        try:
            return self._json(call, Run.from_json, calls.within(self.http.timeout, deadline, run_id))
        except Unreachable:
            calls.left(deadline, run_id)
            raise

    def _stream_until_final(
        self, run_id: str, deadline: float | None, last_line: str | None
    ) -> tuple[Run | None, str | None]:
        """Read the run's events until it is final (the run), or the stream ends (None: look again)."""
        try:
            for event in self._events(*calls.events(run_id, deadline, last_line, self.http.timeout)):
                done, final, last_line = calls.follow(event, last_line)
                if done:
                    return final, last_line
                calls.left(deadline, run_id)
        except httpx.TimeoutException:
            calls.left(deadline, run_id)  # the deadline passed while the run was quiet
        return None, last_line

    def runs(
        self,
        function: str | None = None,
        status: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        *,
        trigger: str | None = None,
        limit: int | None = None,
    ) -> Iterator[Run]:
        """Runs newest first, following the API's cursors page by page (at most ``limit`` of them)."""
        filters = {"function": function, "status": status, "trigger": trigger, "since": since, "until": until}
        cursor, seen = None, 0
        while True:
            runs, cursor = self._json(calls.runs_page(filters, calls.PAGE_SIZE, cursor), calls.page)
            for run in runs:
                yield run
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if not cursor or not runs:
                return

    def cancel(self, run_id: str) -> Run:
        """Cancel a delayed, queued or retrying run at once; a running one stops within about a second."""
        return self._json(calls.Call("POST", f"/api/runs/{calls.segment(run_id)}/cancel"), Run.from_json)

    def replay(self, run_id: str, payload: Any = calls.UNSET) -> Run:
        """A new run of the same function with the same payload, or with ``payload``."""
        return self._json(calls.replay(run_id, payload), Run.from_json)

    def replay_failed(
        self,
        function: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
    ) -> list[Replayed]:
        """Replay every failed run that matches (and was not replayed before), newest first."""
        return self._json(calls.replay_failed(function, since, until, limit), calls.replayed)

    # -- artifacts -----------------------------------------------------------------------------

    def download(
        self, run_id: str, name: str, dest: str | os.PathLike[str] | None = None, *, progress: Progress | None = None
    ) -> Path:
        """Save one artifact of a run to ``dest`` (a file, or a folder; default: its name, here), streaming.

        A folder ``dest`` ending in ``/`` is made first (and removed again if the download fails); a file
        ``dest`` in a folder that does not exist raises FileNotFoundError before anything is sent."""
        return self._save(calls.artifact_path(run_id, name), calls.target(name, dest), progress)

    def latest_artifact(
        self, function: str, name: str, dest: str | os.PathLike[str] | None = None, *, progress: Progress | None = None
    ) -> Path:
        """``download`` from the newest successful run of ``function`` that has the artifact ``name``."""
        return self._save(calls.latest_path(function, name), calls.target(name, dest), progress)

    def _save(self, path: str, dest: calls.Destination, progress: Progress | None) -> Path:
        target, part, saved = dest.path, calls.partial(dest.path), False
        try:
            with self.http.stream("GET", path, follow_redirects=True) as response:
                _check(response, read=response.read)
                total = int(response.headers.get("content-length", 0)) or None
                done = 0
                with part.open("wb") as out:
                    if progress is not None:  # the file is open: a progress bar may show from here
                        progress(done, total)
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
            part.replace(target)
            saved = True
        except httpx.TransportError as exc:
            raise calls.unreached(self.url, exc) from None
        finally:
            part.unlink(missing_ok=True)
            if not saved:
                dest.discard()
        return target

    # -- schedules -----------------------------------------------------------------------------

    def schedules(self) -> list[Schedule]:
        return self._json(calls.Call("GET", "/api/schedules"), calls.schedules)

    def create_schedule(
        self, name: str, function: str, cron: str, *, timezone: str = "UTC", payload: dict[str, Any] | None = None
    ) -> Schedule:
        """A schedule kept in Redis (``source = "api"``); the schedulers fire it from within a second or two."""
        return self._json(calls.create_schedule(name, function, cron, timezone, payload), Schedule.from_json)

    def delete_schedule(self, name: str) -> None:
        self._send(calls.Call("DELETE", f"/api/schedules/{calls.segment(name)}"))

    def pause_schedule(self, name: str) -> Schedule:
        return self._json(calls.Call("POST", f"/api/schedules/{calls.segment(name)}/pause"), Schedule.from_json)

    def resume_schedule(self, name: str) -> Schedule:
        return self._json(calls.Call("POST", f"/api/schedules/{calls.segment(name)}/resume"), Schedule.from_json)

    def trigger_schedule(self, name: str) -> Run:
        """A scheduled run now, outside the cron times."""
        return self._json(calls.Call("POST", f"/api/schedules/{calls.segment(name)}/trigger"), Run.from_json)

    def backfill(self, schedule: str, start: datetime | str, end: datetime | str) -> Backfill:
        """One run per tick of ``schedule`` in ``[start, end)``, as that tick would have run; ticks that already
        have a run are skipped (in ``.skipped``). At most 1,000 ticks per call."""
        return self._json(calls.backfill(schedule, start, end), Backfill.from_json)

    # -- live views and raw calls ------------------------------------------------------------------

    def events(self, run_id: str) -> Iterator[Event]:
        """The run's events (``run``, ``line``, ``gap``, then ``end``), resuming a stream that broke off; where
        streams are refused (a proxy's 403 or 502 page), made by looking at the run every 0.25-2 s."""
        return self._follow(f"/api/runs/{calls.segment(run_id)}/events", run_id, with_state=True)

    def follow_logs(self, run_id: str) -> Iterator[Event]:
        """The run's log lines as ``line`` events (then ``end``), from the first one, until it ends (polling
        where streams are refused, as ``events``)."""
        return self._follow(f"/api/runs/{calls.segment(run_id)}/logs?follow=1", run_id, with_state=False)

    def logs(self, run_id: str) -> list[dict[str, Any]]:
        return self._json(calls.Call("GET", f"/api/runs/{calls.segment(run_id)}/logs"), calls.lines)

    def invoke(self, function: str, body: bytes | str = b"", headers: dict[str, str] | None = None) -> httpx.Response:
        """POST to the function's Netlify URL and return the response as it is (a synchronous function's own
        4xx included); raises only when nothing answers, or for the API's own errors (unknown function)."""
        try:
            response = self.http.post(calls.function_path(function), content=body, headers=headers)
        except httpx.TransportError as exc:
            raise calls.unreached(self.url, exc, "POST") from None
        return calls.invoked(response)

    def _follow(self, path: str, run_id: str, *, with_state: bool) -> Iterator[Event]:
        """SSE from ``path`` until ``end``; a dropped stream resumes after the last line (``Last-Event-ID``)."""
        last_id: str | None = None
        failures = 0
        while True:
            headers = {"last-event-id": last_id} if last_id is not None else {}
            try:
                for event in self._events(path, headers, httpx.Timeout(30.0, read=calls.STREAM_READ_S)):
                    failures = 0
                    last_id = event.id if event.id is not None else last_id
                    yield event
                    if event.event == "end":
                        return
            except httpx.TransportError as exc:
                failures += 1
                if failures > 5:
                    raise calls.unreached(self.url, exc) from None
                time.sleep(min(0.25 * 2**failures, 5.0))
            except (ApiError, _NotAStream) as exc:
                if isinstance(exc, ApiError) and exc.status in calls.STREAM_FATAL:
                    raise
                yield from self._poll(run_id, calls.Poll(with_state, seen=int(last_id) + 1 if last_id else 0))
                return

    def _poll(self, run_id: str, poll: calls.Poll) -> Iterator[Event]:
        """The run's events from looking at it every 0.25-2 s (a missing run raises NotFound here)."""
        while not poll.ended:
            run = self._json(calls.Call("GET", f"/api/runs/{calls.segment(run_id)}"), calls.run_json)
            yield from poll.events(run, self.logs(run_id))
            if not poll.ended:
                time.sleep(poll.pause)

    def _events(self, path: str, headers: dict[str, str], timeout: httpx.Timeout) -> Iterator[Event]:
        with self.http.stream("GET", path, headers=headers, timeout=timeout) as response:
            _check(response, read=response.read)
            if not calls.is_stream(response):
                raise _NotAStream(response.headers.get("content-type", ""))
            parser = Parser()
            for line in response.iter_lines():
                event = parser.feed(line)
                if event is not None:
                    yield event

    def _send(self, call: calls.Call, limits: httpx.Timeout | None = None) -> httpx.Response:
        try:
            response = self.http.request(
                call.method, call.path, **call.kwargs(), timeout=limits or httpx.USE_CLIENT_DEFAULT
            )
        except httpx.TransportError as exc:
            raise calls.unreached(self.url, exc, call.method) from None
        _check(response)
        return response

    def _json(self, call: calls.Call, read: Callable[[Any], T], limits: httpx.Timeout | None = None) -> T:
        """The answer's JSON as ``read`` makes it: BadAnswer when it is not JSON of that shape (a proxy's page)."""
        return calls.decode(self._send(call, limits), read)


class _NotAStream(Exception):
    """The events URL answered, but not with ``text/event-stream`` (a proxy in the way)."""


def _check(response: httpx.Response, read: Callable[[], Any] | None = None) -> None:
    if response.status_code >= 400:
        if read is not None:
            with contextlib.suppress(httpx.HTTPError):
                read()
        error: ApiError | None = api_error(response)
        if error is not None:
            raise error
