"""GET /api/schedules, pause / resume / trigger, auth, and `backburner schedules --json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.app import create_app
from backburner import schedules as schedules_cli
from backburner.cli import main
from backburner.client import Client
from jobs import clock
from jobs.runtime import Runtime
from jobs.schedules.state import ScheduleState
from jobs.settings import Settings
from jobs.wiring import open_runtime
from scheduler.engine import Engine
from tests.scheduler.conftest import at

KEYS = {
    "name",
    "function",
    "payload",
    "source",
    "schedule",
    "timezone",
    "paused",
    "next_runs",
    "overlap",
    "catchup",
    "last_fired",
    "last_run",
    "skipped",
    "last_skipped",
}


def test_list_schedules_shows_next_runs_state_last_run_and_skips(
    client: TestClient, runtime: Runtime, make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine("tick", overlap="skip")
    engine.tick(at("2026-03-02T10:01"))
    [first] = engine.tick(at("2026-03-02T10:05:00.010"))
    engine.tick(at("2026-03-02T10:10:00.010"))  # skipped: the first run is still queued
    response = client.get("/api/schedules", params={"count": 3})
    assert response.status_code == 200
    listing = {item["name"]: item for item in response.json()}
    assert sorted(listing) == ["berlin", "report-background", "tick"]  # "plain" has no schedule
    tick = listing["tick"]
    assert set(tick) == KEYS
    assert (tick["function"], tick["source"], tick["payload"]) == ("tick", "file", {})
    assert tick["schedule"] == "*/5 * * * *" and tick["timezone"] == "UTC" and tick["paused"] is False
    assert tick["last_run"] == {"id": first.run_id, "status": "queued", "scheduled_for": "2026-03-02T10:05:00.000Z"}
    assert tick["last_fired"] == "2026-03-02T10:05:00Z"  # the skipped 10:10 tick did not fire
    assert tick["skipped"] == 1 and tick["last_skipped"] == "2026-03-02T10:10:00.000Z"
    runs = [clock.parse_iso(t) for t in tick["next_runs"]]
    assert len(runs) == 3 and all(t.minute % 5 == 0 and t.second == 0 for t in runs)
    assert runs == sorted(runs) and runs[0] > clock.now()
    assert listing["berlin"]["timezone"] == "Europe/Berlin" and listing["berlin"]["last_run"] is None
    assert listing["berlin"]["last_fired"] is None
    skips = client.get("/api/schedules/tick/skips").json()
    assert skips == [{"tick": "2026-03-02T10:10:00.000Z", "reason": "overlap", "blocking_run": first.run_id}]


def test_pause_and_resume_are_kept_in_redis(client: TestClient, runtime: Runtime) -> None:
    paused = client.post("/api/schedules/tick/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    fresh = open_runtime(runtime.settings)  # another process's view
    try:
        assert ScheduleState(fresh.client, fresh.store.keys).get("tick").paused
    finally:
        fresh.close()
    assert [i["paused"] for i in client.get("/api/schedules").json() if i["name"] == "tick"] == [True]
    resumed = client.post("/api/schedules/tick/resume")
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    status = ScheduleState(runtime.client, runtime.store.keys).get("tick")
    assert not status.paused and status.handled_until is not None
    assert abs((clock.now() - status.handled_until).total_seconds()) < 5


def test_trigger_runs_now_as_a_scheduled_run_not_deduplicated(client: TestClient, runtime: Runtime) -> None:
    client.post("/api/schedules/tick/pause")  # "run now" works while paused
    before = clock.now()
    answers = [client.post("/api/schedules/tick/trigger") for _ in range(2)]  # tick: overlap = "allow"
    assert [a.status_code for a in answers] == [202, 202]
    first, second = (a.json() for a in answers)
    assert first["id"] != second["id"]
    assert answers[0].headers["location"] == f"/api/runs/{first['id']}"
    assert first["trigger"] == "schedule" and first["idempotency_key"] is None
    assert (first["time_limit_s"], first["max_attempts"]) == (30.0, 1)
    assert before <= clock.parse_iso(first["scheduled_for"]) <= clock.now()
    event = runtime.store.event(first["id"])
    next_run = clock.parse_iso(json.loads(event["body"])["next_run"])
    assert next_run > before and next_run.minute % 5 == 0 and next_run.second == 0
    assert event["headers"]["x-nf-event"] == "schedule"
    last = [i for i in client.get("/api/schedules").json() if i["name"] == "tick"][0]["last_run"]
    assert last["id"] == second["id"]


def test_trigger_honours_overlap_skip_with_a_conflict(client: TestClient) -> None:
    # "berlin" keeps the default overlap = "skip"; the first run stays queued (no worker).
    assert client.post("/api/schedules/berlin/trigger").status_code == 202
    second = client.post("/api/schedules/berlin/trigger")
    assert second.status_code == 409
    assert "overlap" in second.json()["error"]["message"]


def test_unknown_names_are_404(client: TestClient) -> None:
    missing = client.post("/api/schedules/nope/pause")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "schedule_not_found"
    assert "berlin, report-background, tick" in missing.json()["error"]["message"]  # the ones there are
    unscheduled = client.post("/api/schedules/plain/trigger")
    assert unscheduled.status_code == 404 and unscheduled.json()["error"]["code"] == "schedule_not_found"
    assert "has no schedule" in unscheduled.json()["error"]["message"]


def test_schedules_need_the_bearer_token_outside_dev(settings: Settings) -> None:
    secured = settings.model_copy(update={"dev": False, "api_token": "s3cret-0123456789abcdef"})
    with TestClient(create_app(secured)) as api:
        for method, path in [("GET", "/api/schedules"), ("POST", "/api/schedules/tick/pause")]:
            assert api.request(method, path).status_code == 401
            assert api.request(method, path, headers={"authorization": "Bearer wrong"}).status_code == 401
        ok = api.get("/api/schedules", headers={"authorization": "Bearer s3cret-0123456789abcdef"})
        assert ok.status_code == 200 and len(ok.json()) == 3


def test_cli_schedules_json_shape_with_pause_state_from_redis(
    site: Path, env: dict[str, str], runtime: Runtime
) -> None:
    ScheduleState(runtime.client, runtime.store.keys).pause("berlin")
    command = [sys.executable, "-m", "backburner", "schedules", "--site", str(site)]
    command += ["--from", "2026-03-28T12:00:00Z", "--count", "2", "--json"]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    keys = {"name", "function", "schedule", "timezone", "paused", "next_runs", "source"}
    assert [set(item) for item in listing] == [keys] * 3
    assert {(item["function"], item["source"]) for item in listing} == {
        ("berlin", "file"),
        ("report-background", "file"),
        ("tick", "file"),
    }
    by_name = {item["name"]: item for item in listing}
    assert by_name["berlin"]["paused"] is True and by_name["tick"]["paused"] is False
    # 02:30 Berlin on the night clocks go forward fires at the jump (01:00 UTC).
    assert by_name["berlin"]["next_runs"] == ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
    assert by_name["report-background"]["next_runs"] == ["2026-03-30T06:00:00Z", "2026-03-31T06:00:00Z"]


def test_cli_pause_resume_and_trigger_go_through_the_api(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = Client(http=client)  # the TestClient is an httpx.Client talking to the real app
    monkeypatch.setattr(schedules_cli, "connect", lambda url: api)
    state = ScheduleState(runtime.client, runtime.store.keys)
    runner = CliRunner()

    paused = runner.invoke(main, ["schedules", "pause", "tick"])
    assert paused.exit_code == 0, paused.output
    assert state.get("tick").paused
    resumed = runner.invoke(main, ["schedules", "resume", "tick"])
    assert resumed.exit_code == 0 and not state.get("tick").paused
    triggered = runner.invoke(main, ["schedules", "trigger", "tick"])
    assert triggered.exit_code == 0, triggered.output
    run_id = triggered.stdout.strip().splitlines()[-1]
    assert runtime.store.get(run_id).trigger == "schedule"
    missing = runner.invoke(main, ["schedules", "pause", "plain"])
    assert missing.exit_code == 1 and "has no schedule" in missing.output
