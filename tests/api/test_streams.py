"""Live logs and run events over SSE, against a real `backburner api` process and a real worker."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from backburner.sse import Event, parse
from jobs.execution.context import LOG_LINES_CAP, RunLog
from jobs.lifecycle import new_run
from jobs.log_tail import LogTail
from tests.support.procs import wait_for
from tests.support.servers import ApiProc
from tests.support.sites import FUNCTIONS, make_site

CHATTY = """
    import json, time
    def handler(event, context):
        options = json.loads(event["body"] or "{}")
        n, pause = options.get("n", 5), options.get("pause", 0.3)
        for i in range(n):
            print(f"line {i}")
            context.progress(i + 1, n, f"step {i + 1}")
            time.sleep(pause)
        return {"lines": n}
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return make_site(tmp_path / "site", {**FUNCTIONS, "chatty-background": CHATTY})


@pytest.fixture
def api(site: Path, env: dict[str, str]):
    proc = ApiProc(site, env).start()
    yield proc
    proc.stop()


def trigger(api: ApiProc, name: str, payload: dict) -> str:
    response = httpx.post(f"{api.url}/.netlify/functions/{name}", json=payload)
    assert response.status_code == 202, response.text
    return response.headers["x-nf-request-id"]


def events(api: ApiProc, path: str, headers: dict[str, str] | None = None, timeout: float = 30):
    """Yield ``(arrival time, Event)`` as they arrive."""
    with httpx.stream("GET", f"{api.url}{path}", headers=headers, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in parse(response.iter_lines()):
            yield time.monotonic(), event


def test_follow_streams_lines_while_the_run_is_running_then_ends(api, worker):
    run_id = trigger(api, "chatty-background", {"n": 6, "pause": 0.4})
    received: list[Event] = []
    status_at_first_line = None
    for _, event in events(api, f"/api/runs/{run_id}/logs?follow=1"):
        received.append(event)
        if event.event == "line" and status_at_first_line is None:
            status_at_first_line = httpx.get(f"{api.url}/api/runs/{run_id}").json()["status"]
    lines = [e for e in received if e.event == "line"]
    assert status_at_first_line == "running"  # the line came while the function was still working
    assert [e.json()["line"] for e in lines] == [f"line {i}" for i in range(6)]
    assert [e.id for e in lines] == [str(i) for i in range(6)]
    assert all(e.json()["stream"] == "stdout" and e.json()["attempt"] == 1 for e in lines)
    assert received[-1].event == "end"
    assert received[-1].json() == {"status": "succeeded", "lines": 6}


def test_resume_with_last_event_id_sends_only_later_lines(api, worker):
    run_id = trigger(api, "chatty-background", {"n": 5, "pause": 0.0})
    wait_for(lambda: httpx.get(f"{api.url}/api/runs/{run_id}").json()["status"] == "succeeded", message="run")
    resumed = [e for _, e in events(api, f"/api/runs/{run_id}/logs?follow=1", {"Last-Event-ID": "2"})]
    assert [(e.event, e.id) for e in resumed] == [("line", "3"), ("line", "4"), ("end", None)]
    by_query = [e for _, e in events(api, f"/api/runs/{run_id}/logs?follow=1&last_event_id=3")]
    assert [e.id for e in by_query if e.event == "line"] == ["4"]
    plain = httpx.get(f"{api.url}/api/runs/{run_id}/logs").json()
    assert [line["line"] for line in plain["lines"]] == [f"line {i}" for i in range(5)]


def test_events_stream_reports_progress_as_it_advances(api, worker):
    run_id = trigger(api, "chatty-background", {"n": 5, "pause": 0.5})
    timed = list(events(api, f"/api/runs/{run_id}/events"))
    runs = [(t, e.json()) for t, e in timed if e.event == "run"]
    done = [run["progress"]["done"] for _, run in runs if run["progress"]["done"] is not None]
    assert done == sorted(done) and len(set(done)) >= 3, done  # progress seen advancing, step by step
    assert {run["status"] for _, run in runs} >= {"running", "succeeded"}
    assert timed[-1][1].event == "end" and timed[-1][1].json()["status"] == "succeeded"
    assert [e.json()["line"] for _, e in timed if e.event == "line"] == [f"line {i}" for i in range(5)]
    # Updates came spread over the run, not all at the end.
    first_progress = next(t for t, run in runs if run["progress"]["done"])
    assert timed[-1][0] - first_progress > 1.0


def test_unknown_run_is_404_json(api):
    response = httpx.get(f"{api.url}/api/runs/NOPE/logs?follow=1")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "run_not_found"


def test_line_numbers_survive_the_cap_and_a_gap_is_reported(runtime, client):
    function = runtime.site.get("echo-background")
    run, _ = runtime.store.create(new_run(function, "api"), {})
    runtime.lifecycle.cancel(run.id)  # terminal, so the stream ends after the lines
    keys = runtime.store.keys
    log = RunLog(runtime.client, keys.logs(run.id), 1, keys.log_count(run.id))
    for i in range(LOG_LINES_CAP + 7):
        log.write(f"l{i}")
    log.flush()  # lines are sent in batches
    chunk = LogTail(runtime.client, keys).read(run.id, 3, limit=2)
    assert chunk.total == LOG_LINES_CAP + 7 and chunk.first == 7 and chunk.dropped == 4
    assert [(n, entry["line"]) for n, entry in chunk.lines] == [(7, "l7"), (8, "l8")]
    body = client.get(f"/api/runs/{run.id}/logs?follow=1", headers={"Last-Event-ID": str(LOG_LINES_CAP)}).text
    got = list(parse(body.splitlines()))
    assert [(e.event, e.id) for e in got] == [
        ("line", str(LOG_LINES_CAP + 1)),
        *[("line", str(n)) for n in range(LOG_LINES_CAP + 2, LOG_LINES_CAP + 7)],
        ("end", None),
    ]
    body = client.get(f"/api/runs/{run.id}/logs?follow=1&last_event_id=1").text
    first = list(parse(body.splitlines()))[0]
    assert first.event == "gap" and json.loads(first.data) == {"dropped": 5}


def test_a_long_stream_closes_without_end_and_resumes_where_it_stopped(runtime, client, monkeypatch):
    from api import streams

    monkeypatch.setattr(streams, "STREAM_MAX_S", 0.3)
    run, _ = runtime.store.create(new_run(runtime.site.get("echo-background"), "api"), {})  # queued: no worker
    keys = runtime.store.keys
    log = RunLog(runtime.client, keys.logs(run.id), 1, keys.log_count(run.id))
    log.write("first")
    log.flush()
    got = list(parse(client.get(f"/api/runs/{run.id}/events").text.splitlines()))
    assert [e.event for e in got] == ["line", "run"] and got[0].id == "0"  # closed, no "end": still active
    log.write("second")
    log.flush()
    runtime.lifecycle.cancel(run.id)
    resumed = list(parse(client.get(f"/api/runs/{run.id}/events", headers={"Last-Event-ID": "0"}).text.splitlines()))
    assert [(e.event, e.id) for e in resumed] == [("line", "1"), ("run", None), ("end", None)]


def test_head_answers_as_get_without_the_body_even_on_a_stream(api, worker):
    run_id = trigger(api, "chatty-background", {"n": 3, "pause": 5})
    wait_for(lambda: httpx.get(f"{api.url}/api/runs/{run_id}").json()["status"] == "running", message="running")

    stream = httpx.head(f"{api.url}/api/runs/{run_id}/events", timeout=5)  # the GET would stream for 15 s
    assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
    assert stream.content == b""
    run = httpx.head(f"{api.url}/api/runs/{run_id}")
    assert run.status_code == 200 and run.content == b"" and int(run.headers["content-length"]) > 100
    assert httpx.head(f"{api.url}/healthz").status_code == 200
    other_id = run_id[:-1] + ("1" if run_id.endswith("0") else "0")  # a run id, but not this run's
    missing = httpx.head(f"{api.url}/api/runs/{other_id}")
    assert missing.status_code in (400, 404) and missing.content == b""
    assert httpx.post(f"{api.url}/api/runs/{run_id}/cancel").status_code == 200
