"""The requests behind each client method, and the rules both clients share; ``sync`` and ``aio`` send them."""

from __future__ import annotations

import errno
import json
import math
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from ..sse import Event
from .errors import BadAnswer, Unreachable, api_error
from .models import Replayed, Run, Schedule

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8888"
#: Runs per page while ``runs()`` follows cursors (the API allows up to 500).
PAGE_SIZE = 100
#: Live streams send a keep-alive every 15 s, so this much silence means the connection is gone.
STREAM_READ_S = 60.0
#: Polling while the event stream cannot be used: first and longest pause between looks at the run.
POLL_FIRST_S = 0.25
POLL_MAX_S = 2.0
#: ``wait`` falls back to polling after this many streams in a row broke off.
STREAM_FAILURES = 3
#: Refusals of a stream that are the caller's to see (a wrong token, too many requests). Any other error status
#: (403, 404, a proxy's 502 page) means streams do not get through: look at the run instead (``Poll``).
STREAM_FATAL = frozenset({401, 429})
#: Error codes the API itself answers on a function's Netlify URL (anything else there is the function's answer).
OWN_ERRORS = frozenset(
    {"function_not_found", "payload_too_large", "store_unavailable", "unauthorized", "invalid_input"}
)
#: The longest ``Idempotency-Key`` the API takes.
KEY_MAX = 255
#: A sentinel for "not given" where None is a meaningful value (a JSON payload of null).
UNSET: Any = object()


def base_url(url: str | None) -> str:
    """The API's URL (else BACKBURNER_URL, else dev's); ValueError naming it when it is not an http(s) URL."""
    found = (url or os.environ.get("BACKBURNER_URL") or DEFAULT_URL).rstrip("/")
    try:
        parsed = httpx.URL(found)
    except httpx.InvalidURL as exc:
        raise ValueError(f"{found!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{found!r} is not an http(s) URL like http://127.0.0.1:8888")
    return found


def auth_headers(token: str | None) -> dict[str, str]:
    """The Authorization header; ValueError (never showing the token) when it cannot travel in one."""
    token = token if token is not None else os.environ.get("BACKBURNER_API_TOKEN")
    if token and not (token.isascii() and token.isprintable()):
        raise ValueError("the API token must be printable ASCII: it travels in an HTTP header")
    return {"authorization": f"Bearer {token}"} if token else {}


def moment(value: datetime | str) -> str:
    """A time for the API: ISO 8601 in UTC (a naive datetime is taken as UTC, as the API does)."""
    if isinstance(value, str):
        return value
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def duration(value: timedelta | float | int | str) -> str:
    """A delay for the API: seconds, or a string the API reads (``"90s"``, ``"15m"``, ``"1h"``)."""
    if isinstance(value, bool):
        raise TypeError("delay must be a number of seconds, a timedelta or a string like '90s'")
    if isinstance(value, str):
        return value
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not math.isfinite(seconds):
        raise ValueError(f"delay must be a finite number of seconds, not {value!r}")
    # Every digit, never an exponent: the API reads "2592000s", not "2.592e+06s" (30 days).
    return f"{Decimal(repr(seconds)):f}".removesuffix(".0") + "s"


def segment(value: str) -> str:
    """One path segment, quoted (names come from users; '/' must not open another route). A '.' or '..' is
    percent-encoded too: httpx would resolve it, sending the request (and the token) to another endpoint. An
    empty one is a ValueError: ``/api/functions//latest`` would name another endpoint too."""
    if not value:
        raise ValueError("a function, run, schedule or artifact name must not be empty")
    return value.replace(".", "%2E") if value in (".", "..") else quote(value, safe="")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, str] | None = None
    body: Any = UNSET
    headers: dict[str, str] | None = None

    def kwargs(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.params:
            options["params"] = self.params
        if self.body is not UNSET:
            options["content"] = json.dumps(self.body).encode()
        if self.body is not UNSET or self.headers:
            headers = {"content-type": "application/json"} if self.body is not UNSET else {}
            options["headers"] = {**headers, **(self.headers or {})}
        return options


def _params(**values: Any) -> dict[str, str]:
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = moment(value) if isinstance(value, datetime) else str(value)
    return out


def trigger(
    function: str,
    payload: Any,
    idempotency_key: str | None,
    delay: timedelta | float | int | str | None,
    run_at: datetime | str | None,
) -> Call:
    if delay is not None and run_at is not None:
        raise ValueError("give delay or run_at, not both")
    if idempotency_key is not None:
        check_key(idempotency_key)
    params = _params(delay=duration(delay) if delay is not None else None, run_at=run_at)
    headers = {"idempotency-key": idempotency_key} if idempotency_key is not None else None
    body = {} if payload is None else payload
    return Call("POST", f"/api/functions/{segment(function)}/runs", params, body, headers)


def function_path(function: str) -> str:
    """The function's Netlify URL, for ``invoke``."""
    return f"/.netlify/functions/{segment(function)}"


def invoked(response: httpx.Response) -> httpx.Response:
    """A function's answer as it is (its own 4xx and 5xx included); the API's own errors on the URL raised."""
    error = api_error(response)
    if error is not None and error.code in OWN_ERRORS:
        raise error
    return response


def check_key(key: str) -> None:
    """The API's rule for ``Idempotency-Key`` (DESIGN.md section 10), checked before sending: a key outside it
    would be refused (400) or could not travel in a header at all."""
    if not isinstance(key, str):
        raise TypeError(f"idempotency_key must be a string, not {type(key).__name__}")
    if not (1 <= len(key) <= KEY_MAX and key.isascii() and key.isprintable()):
        what = "empty" if not key else f"{len(key)} characters" if len(key) > KEY_MAX else "not printable ASCII"
        raise ValueError(f"idempotency_key must be 1 to {KEY_MAX} printable ASCII characters; this one is {what}")


def unreached(url: str, exc: httpx.TransportError, method: str = "GET") -> Exception:
    """What a request that got no answer raises: Unreachable (``sent`` when a POST went out and its answer did
    not come: it may have taken effect); but a request that could not be written as given (h11's
    LocalProtocolError: a header value with a newline, say) is the caller's, a ValueError."""
    if isinstance(exc, httpx.LocalProtocolError):
        return ValueError(f"the request cannot be sent as given: {exc}")
    answer_lost = isinstance(exc, httpx.ReadTimeout | httpx.ReadError | httpx.RemoteProtocolError)
    return Unreachable(url, exc, sent=method == "POST" and answer_lost)


def runs_page(filters: dict[str, Any], limit: int, cursor: str | None) -> Call:
    return Call("GET", "/api/runs", _params(**filters, limit=limit, cursor=cursor))


def replay(run_id: str, payload: Any) -> Call:
    return Call("POST", f"/api/runs/{segment(run_id)}/replay", body=payload)


def replay_failed(function: str | None, since: Any, until: Any, limit: int | None) -> Call:
    body: dict[str, Any] = {"status": "failed"}
    for key, value in (("function", function), ("since", since), ("until", until), ("limit", limit)):
        if value is not None:
            body[key] = moment(value) if isinstance(value, datetime) else value
    return Call("POST", "/api/runs/replay", body=body)


def backfill(schedule: str, start: datetime | str, end: datetime | str) -> Call:
    return Call("POST", f"/api/schedules/{segment(schedule)}/backfill", body={"from": moment(start), "to": moment(end)})


def create_schedule(name: str, function: str, cron: str, timezone: str, payload: dict[str, Any] | None) -> Call:
    body = {"name": name, "function": function, "cron": cron, "timezone": timezone, "payload": payload or {}}
    return Call("POST", "/api/schedules", body=body)


def artifact_name(name: str) -> str:
    """An artifact name as the end of a URL path, '/' kept, each segment as ``segment`` sends it: the API gets
    ``../../x`` as given and answers with the rule it breaks."""
    return "/".join(segment(part) if part else "" for part in name.split("/"))


def artifact_path(run_id: str, name: str) -> str:
    return f"/api/runs/{segment(run_id)}/artifacts/{artifact_name(name)}"


def latest_path(function: str, name: str) -> str:
    return f"/api/functions/{segment(function)}/latest/artifacts/{artifact_name(name)}"


@dataclass(frozen=True)
class Destination:
    """Where a download goes, made ready before the request is sent; ``made`` is the topmost folder this
    download created, removed again (when empty) if the download fails, so a 404 leaves nothing behind."""

    path: Path
    made: Path | None = None

    def discard(self) -> None:
        """Remove the folders this download made, deepest first, as long as they are empty."""
        if self.made is None:
            return
        folder = self.path.parent
        while True:
            try:
                folder.rmdir()
            except OSError:
                return
            if folder == self.made:
                return
            folder = folder.parent


def target(name: str, dest: str | os.PathLike[str] | None) -> Destination:
    """Where a download goes: ``dest`` if it is a file path; inside it if it is a folder (or ends in ``/``,
    then it is made); else the artifact's file name in the current folder. FileNotFoundError (naming it) when
    the file's folder does not exist; other OSErrors when a folder cannot be made."""
    filename = PurePosixPath(name).name
    if dest is None:
        return Destination(Path.cwd() / filename)
    path, made = Path(dest), None
    if str(dest).endswith(("/", os.sep)):
        made = next((p for p in (path, *path.parents) if p.parent.exists()), None) if not path.exists() else None
        path.mkdir(parents=True, exist_ok=True)
    path = path / filename if path.is_dir() else path
    if not path.parent.is_dir():
        folder = str(path.parent)
        raise FileNotFoundError(errno.ENOENT, f"the folder {folder} does not exist", folder)
    return Destination(path, made)


def partial(path: Path) -> Path:
    """The temporary file a download is written to, then renamed: a failed download leaves nothing behind."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")


def is_stream(response: httpx.Response) -> bool:
    """Whether the answer is Server-Sent Events (a proxy may answer JSON or HTML instead)."""
    kind: str = response.headers.get("content-type", "")
    return kind.startswith("text/event-stream")


def left(deadline: float | None, run_id: str) -> float:
    """Seconds until ``deadline`` (a large number without one); TimeoutError once it passed."""
    if deadline is None:
        return 3600.0
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"run {run_id} did not finish in time")
    return remaining


def within(timeout: httpx.Timeout, deadline: float | None, run_id: str) -> httpx.Timeout:
    """The client's ``timeout`` cut to what is left before ``deadline``: a silent API must not hold ``wait``
    past its own timeout (TimeoutError once it passed)."""
    if deadline is None:
        return timeout
    remaining = left(deadline, run_id)

    def cut(seconds: float | None) -> float:
        return remaining if seconds is None else min(seconds, remaining)

    return httpx.Timeout(
        connect=cut(timeout.connect), read=cut(timeout.read), write=cut(timeout.write), pool=cut(timeout.pool)
    )


def events(
    run_id: str, deadline: float | None, last_line: str | None, timeout: httpx.Timeout
) -> tuple[str, dict[str, str], httpx.Timeout]:
    """Path, headers and timeout of a run's event stream, resumed after ``last_line``: the client's ``timeout``
    (the stream's read one is longer: keep-alives come every 15 s), none of it beyond ``deadline``."""
    headers = {"last-event-id": last_line} if last_line is not None else {}
    stream = httpx.Timeout(connect=timeout.connect, read=STREAM_READ_S, write=timeout.write, pool=timeout.pool)
    limits = within(stream, deadline, run_id)
    return f"/api/runs/{segment(run_id)}/events", headers, limits


def follow(event: Event, last_line: str | None) -> tuple[bool, Run | None, str | None]:
    """What one event of a run's stream says: whether the stream is done for ``wait`` (with the final run,
    or None: look at the run again), and the id of the newest log line, to resume after."""
    if event.event == "line" and event.id is not None:
        return False, None, event.id
    if event.event == "run":
        run = Run.from_json(event.json())
        return run.terminal, run if run.terminal else None, last_line
    return event.event == "end", None, last_line


@dataclass
class Poll:
    """The events of a run made from looking at it (``GET /api/runs/{id}`` then its logs), for where streams do
    not get through: ``line`` for each new line, ``run`` when it changed (with ``with_state``), then ``end``."""

    with_state: bool
    seen: int = 0
    last: Any = None
    pause: float = POLL_FIRST_S
    ended: bool = False

    def events(self, run: dict[str, Any], lines: list[dict[str, Any]]) -> list[Event]:
        """What changed since the last look; the run must be read before its lines, so none is missed at the end."""
        out = [Event("line", json.dumps({"n": n, **entry}), str(n)) for n, entry in enumerate(lines) if n >= self.seen]
        self.seen = max(self.seen, len(lines))
        if self.with_state and run != self.last:
            out.append(Event("run", json.dumps(run)))
        changed, self.last = run != self.last or bool(out), run
        self.ended = Run.from_json(run).terminal
        if self.ended:
            out.append(Event("end", json.dumps({"status": run["status"], "lines": self.seen})))
        self.pause = POLL_FIRST_S if changed else min(self.pause * 2, POLL_MAX_S)
        return out


def decode(response: httpx.Response, read: Callable[[Any], T]) -> T:
    """The answer's JSON as ``read`` makes it; BadAnswer (status, first bytes) when it is not JSON of that shape:
    a proxy's page or another service at the URL, never a JSONDecodeError or KeyError from deep inside."""
    try:
        return read(response.json())
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        raise BadAnswer.of(response, exc) from None


def run_json(data: Any) -> dict[str, Any]:
    """A run's JSON, checked to read as a Run."""
    Run.from_json(data)
    return dict(data)


def page(data: Any) -> tuple[list[Run], str | None]:
    """One page of ``GET /api/runs``: its runs and the cursor of the next page."""
    cursor = data.get("next_cursor")
    return [Run.from_json(item) for item in data["runs"]], str(cursor) if cursor else None


def replayed(data: Any) -> list[Replayed]:
    return [Replayed(str(item["of"]), Run.from_json(item["run"])) for item in data["replayed"]]


def schedules(data: Any) -> list[Schedule]:
    return [Schedule.from_json(item) for item in data]


def lines(data: Any) -> list[dict[str, Any]]:
    return [dict(line) for line in data["lines"]]
