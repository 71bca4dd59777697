"""Schedules created and deleted through the API, declared in netlify.toml, and backfill: the HTTP contract
(DESIGN.md section 9) against the real app and Redis."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from jobs import clock
from jobs.runtime import Runtime
from jobs.schedules.registry import Schedules
from jobs.schedules.state import ScheduleState
from jobs.settings import Settings
from scheduler.engine import Engine
from scheduler.schedules import load_schedules
from tests.scheduler.conftest import FUNCTIONS, TOML, at
from tests.support.sites import make_site

DECLARED = """
[[backburner.schedules]]
  name = "report-eu"
  function = "report-background"
  cron = "0 6 * * 1-5"
  timezone = "Europe/Berlin"
  payload = { region = "eu" }
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return make_site(tmp_path / "site", FUNCTIONS, TOML + DECLARED)


def create(client: TestClient, **body: object) -> dict:
    answer = client.post("/api/schedules", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def engine_for(runtime: Runtime, *names: str) -> Engine:
    """An engine over the named schedules, compiled as a scheduler process compiles them."""
    api = Schedules(runtime.client, runtime.store.keys, lambda: runtime.site).from_api()
    return Engine(runtime, [s for s in load_schedules(runtime.site, api=api) if s.name in names])


def test_create_list_get_and_delete_an_api_schedule(client: TestClient, runtime: Runtime) -> None:
    before = clock.now()
    answer = client.post(
        "/api/schedules",
        json={"name": "report-us", "function": "report-background", "cron": "0 7 * * *", "payload": {"region": "us"}},
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["location"] == "/api/schedules/report-us"
    created = answer.json()
    assert (created["name"], created["function"], created["source"]) == ("report-us", "report-background", "api")
    assert (created["schedule"], created["timezone"], created["payload"]) == ("0 7 * * *", "UTC", {"region": "us"})
    assert created["paused"] is False and clock.parse_iso(created["next_runs"][0]).hour == 7
    started = ScheduleState(runtime.client, runtime.store.keys).get("report-us").handled_until
    assert started is not None and before <= started <= clock.now()  # no runs for ticks before it existed

    listing = {item["name"]: item for item in client.get("/api/schedules").json()}
    assert {name: item["source"] for name, item in listing.items()} == {
        "berlin": "file",
        "report-background": "file",
        "tick": "file",
        "report-eu": "file",
        "report-us": "api",
    }
    assert listing["report-eu"]["payload"] == {"region": "eu"} and listing["report-eu"]["timezone"] == "Europe/Berlin"
    assert client.get("/api/schedules/report-us").json() == listing["report-us"]

    client.post("/api/schedules/report-us/pause")
    deleted = client.delete("/api/schedules/report-us")
    assert deleted.status_code == 204 and deleted.content == b""
    assert "report-us" not in {item["name"] for item in client.get("/api/schedules").json()}
    assert runtime.client.exists(runtime.store.keys.schedule("report-us")) == 0  # its state went with it
    gone = client.get("/api/schedules/report-us")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "schedule_not_found"
    assert client.delete("/api/schedules/report-us").status_code == 404


def test_bad_schedules_are_refused_with_the_reason(client: TestClient) -> None:
    base = {"name": "x", "function": "report-background", "cron": "@daily"}
    cases = [
        ({**base, "cron": "0 25 * * *"}, 400, "out of range"),
        ({**base, "timezone": "Mars/Base"}, 400, "unknown time zone"),
        ({**base, "timezone": "localtime"}, 400, "is not a place's zone"),
        ({**base, "name": "no spaces"}, 400, "not a valid schedule name"),
        ({**base, "payload": {"next_run": "x"}}, 400, "cannot set 'next_run'"),
        ({**base, "function": "nope"}, 404, "No function named 'nope'"),
        ({**base, "name": "report-eu"}, 409, "defined in netlify.toml"),
        ({**base, "name": "tick"}, 409, "defined in netlify.toml"),
        ({**base, "payload": {"blob": "x" * 300_000}}, 413, "at most 262144 bytes"),
        ({"name": "x", "function": "report-background"}, 422, "cron"),
        ({**base, "colour": "red"}, 422, "colour"),
    ]
    for body, status, words in cases:
        answer = client.post("/api/schedules", json=body)
        assert answer.status_code == status, (body, answer.text)
        assert words in answer.json()["error"]["message"], (body, answer.text)
    create(client, **base)
    again = client.post("/api/schedules", json=base)
    assert again.status_code == 409 and "already exists" in again.json()["error"]["message"]
    for name in ("report-eu", "tick"):
        refused = client.delete(f"/api/schedules/{name}")
        assert refused.status_code == 409 and "netlify.toml" in refused.json()["error"]["message"]


def rewind(runtime: Runtime, name: str, moment: datetime) -> None:
    """Set where a schedule's ticks were handled up to, back in time too (the scheduler only moves it forward)."""
    runtime.client.hset(runtime.store.keys.schedule(name), "handled_until", clock.iso(moment))


def test_every_schedule_fires_once_per_tick_with_its_payload_and_state(client: TestClient, runtime: Runtime) -> None:
    create(client, name="report-us", function="report-background", cron="0 7 * * *", payload={"region": "us"})
    rewind(runtime, "report-us", at("2026-03-02T06:59"))
    rewind(runtime, "report-eu", at("2026-03-02T04:59"))
    names = ("report-us", "report-eu")
    first, second = engine_for(runtime, *names), engine_for(runtime, *names)
    assert [(o.schedule, o.action) for o in first.tick(at("2026-03-02T05:00:00.050"))] == [("report-eu", "fired")]
    rewind(runtime, "report-eu", at("2026-03-02T04:59"))  # a leader that died before recording it: one run still
    assert [(o.schedule, o.action) for o in second.tick(at("2026-03-02T05:00:00.060"))] == [("report-eu", "duplicate")]
    assert [(o.schedule, o.action) for o in first.tick(at("2026-03-02T07:00:00.050"))] == [("report-us", "fired")]
    runs = {run.schedule: run for run in runtime.store.runs(function="report-background")[0]}
    assert set(runs) == {"report-us", "report-eu"}
    us, eu = runs["report-us"], runs["report-eu"]
    assert us.scheduled_for == "2026-03-02T07:00:00.000Z" and us.trigger == "schedule"
    assert us.idempotency_key == "schedule:report-us:2026-03-02T07:00:00.000Z"
    assert json.loads(runtime.store.event(us.id)["body"]) == {"next_run": "2026-03-03T07:00:00.000Z", "region": "us"}
    assert eu.scheduled_for == "2026-03-02T05:00:00.000Z"  # 06:00 in Berlin
    assert json.loads(runtime.store.event(eu.id)["body"])["region"] == "eu"

    # Overlap (skip, the default) and skips work per schedule: report-us's run is still queued.
    first.tick(at("2026-03-03T07:00:00.050"))
    skips = client.get("/api/schedules/report-us/skips").json()
    assert skips == [{"tick": "2026-03-03T07:00:00.000Z", "reason": "overlap", "blocking_run": us.id}]
    conflict = client.post("/api/schedules/report-us/trigger")
    assert conflict.status_code == 409 and "overlap" in conflict.json()["error"]["message"]
    runtime.lifecycle.cancel(us.id)
    now = client.post("/api/schedules/report-us/trigger")
    assert now.status_code == 202 and now.json()["schedule"] == "report-us"
    assert json.loads(runtime.store.event(now.json()["id"])["body"])["region"] == "us"

    paused = client.post("/api/schedules/report-eu/pause").json()
    assert paused["paused"] is True and paused["source"] == "file"
    assert first.tick(at("2026-03-04T05:00:00.050")) == []  # report-eu's 06:00 Berlin tick: paused
    assert [(o.schedule, o.action) for o in first.tick(at("2026-03-04T07:00:00.050"))] == [("report-us", "skipped")]
    runtime.lifecycle.cancel(now.json()["id"])  # "run now" counts for overlap too
    assert [(o.schedule, o.action) for o in first.tick(at("2026-03-05T07:00:00.050"))] == [("report-us", "fired")]


def test_api_schedules_need_the_token_outside_dev(settings: Settings) -> None:
    secured = settings.model_copy(update={"dev": False, "api_token": "s3cret-s3cret-s3cret"})
    body = {"name": "x", "function": "report-background", "cron": "@daily"}
    with TestClient(create_app(secured)) as api:
        assert api.post("/api/schedules", json=body).status_code == 401
        assert api.delete("/api/schedules/x").status_code == 401
        assert (
            api.post("/api/schedules/tick/backfill", json={"from": "2026-01-01", "to": "2026-01-02"}).status_code == 401
        )
        auth = {"authorization": "Bearer s3cret-s3cret-s3cret"}
        assert api.post("/api/schedules", json=body, headers=auth).status_code == 201
        assert api.delete("/api/schedules/x", headers=auth).status_code == 204


def test_backfill_makes_one_run_per_tick_as_the_tick_would_have(client: TestClient, runtime: Runtime) -> None:
    answer = client.post("/api/schedules/report-eu/backfill", json={"from": "2026-02-02", "to": "2026-02-09"})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["skipped"] == []
    ticks = [run["scheduled_for"] for run in body["runs"]]
    # Mon-Fri at 06:00 Berlin (05:00 UTC in winter): Feb 2-6; [from, to) leaves out the 9th.
    assert ticks == [f"2026-02-0{d}T05:00:00.000Z" for d in range(2, 7)]
    for run in body["runs"]:
        assert run["trigger"] == "backfill" and run["schedule"] == "report-eu" and run["status"] == "queued"
        assert run["idempotency_key"] == f"schedule:report-eu:{run['scheduled_for']}"
        assert (run["time_limit_s"], run["max_attempts"]) == (900.0, 2)  # the function's background limits
    events = [json.loads(runtime.store.event(run["id"])["body"]) for run in body["runs"]]
    assert events[0] == {"next_run": "2026-02-03T05:00:00.000Z", "region": "eu"}
    assert events[-1]["next_run"] == "2026-02-09T05:00:00.000Z"  # Friday's next tick is Monday's

    wider = client.post("/api/schedules/report-eu/backfill", json={"from": "2026-02-01T00:00:00Z", "to": "2026-02-11"})
    assert [run["scheduled_for"] for run in wider.json()["runs"]] == [
        "2026-02-09T05:00:00.000Z",
        "2026-02-10T05:00:00.000Z",
    ]
    assert wider.json()["skipped"] == ticks

    # Ticks stay known after their 24-hour idempotency keys expire: the schedule's tick index remembers them.
    for run in body["runs"]:
        runtime.client.delete(runtime.store.keys.idempotency("report-background", "schedule", run["idempotency_key"]))
    again = client.post("/api/schedules/report-eu/backfill", json={"from": "2026-02-02", "to": "2026-02-07"})
    assert again.json() == {"runs": [], "skipped": ticks}
    listed = runtime.store.runs(function="report-background", trigger="backfill", limit=100)[0]
    assert len(listed) == 7


def test_backfill_skips_ticks_the_scheduler_fired_and_refuses_bad_ranges(client: TestClient, runtime: Runtime) -> None:
    engine = engine_for(runtime, "tick")
    rewind(runtime, "tick", at("2026-03-02T09:59"))
    [fired] = engine.tick(at("2026-03-02T10:00:00.010"))
    answer = client.post("/api/schedules/tick/backfill", json={"from": "2026-03-02T09:50", "to": "2026-03-02T10:10"})
    assert answer.json()["skipped"] == ["2026-03-02T10:00:00.000Z"]
    assert [r["scheduled_for"][11:16] for r in answer.json()["runs"]] == ["09:50", "09:55", "10:05"]

    now = clock.now()
    cases = [
        ({"from": "2026-03-02T10:00", "to": "2026-03-02T10:00"}, 400, "must be later than 'from'"),
        ({"from": "2026-01-01", "to": "2026-01-05"}, 400, "more than 1,000 ticks"),  # every 5 min: 1,152
        (
            {"from": clock.iso(now - timedelta(hours=1)), "to": clock.iso(now + timedelta(hours=1))},
            400,
            "still to come",
        ),
        ({"from": "yesterday", "to": "2026-01-05"}, 400, "from must be an ISO 8601 time"),
        ({"from": 1767225600, "to": "2026-01-05"}, 422, "from"),  # a number is no time
        ({"from": "2026-01-01"}, 422, "to"),
    ]
    for body, status, words in cases:
        refused = client.post("/api/schedules/tick/backfill", json=body)
        assert refused.status_code == status, (body, refused.text)
        assert words in refused.json()["error"]["message"], (body, refused.text)
    exactly = client.post("/api/schedules/tick/backfill", json={"from": "2025-06-01", "to": "2025-06-04T11:20"})
    assert exactly.status_code == 202 and len(exactly.json()["runs"]) == 1000  # the limit itself is fine
    missing = client.post("/api/schedules/nope/backfill", json={"from": "2026-01-01", "to": "2026-01-02"})
    assert missing.status_code == 404
    assert runtime.store.get(fired.run_id or "").trigger == "schedule"


def test_a_tick_whose_run_retention_removed_can_be_backfilled_again(client: TestClient, runtime: Runtime) -> None:
    from jobs.worker.retention import Retention
    from tests.support.procs import wait_for

    body = {"from": "2026-02-02", "to": "2026-02-04"}
    first = client.post("/api/schedules/report-eu/backfill", json=body).json()["runs"]
    for run in first:
        runtime.lifecycle.cancel(run["id"])  # finished, so retention may remove them
    index = runtime.store.keys.schedule_ticks("report-eu")
    assert runtime.client.zcard(index) == 2
    retention = Retention(runtime.settings, runtime.client, runtime.store.keys, lambda: runtime.site, "test")
    function = runtime.site.get("report-background")
    removed = []  # a run finished under a millisecond ago is kept by one sweep and removed by the next

    wait_for(
        lambda: removed.append(retention.sweep_function(function, 0.001)) or sum(removed) == 2,
        message="both runs removed",
    )
    assert runtime.client.zcard(index) == 0  # the index forgets runs that no longer exist
    again = client.post("/api/schedules/report-eu/backfill", json=body).json()
    assert len(again["runs"]) == 2 and again["skipped"] == []


def test_malformed_schedule_requests_are_4xx_json(client: TestClient, runtime: Runtime) -> None:
    deep = "[" * 5000 + "]" * 5000
    cases = [
        ("POST", "/api/schedules", b"\xff\xfe not utf-8"),
        (
            "POST",
            "/api/schedules",
            b'{"name": "x", "function": "tick", "cron": "@daily", "payload": {"a": ' + deep.encode() + b"}}",
        ),
        ("POST", "/api/schedules", b"[]"),
        ("POST", "/api/schedules/tick/backfill", b'{"from": "' + b"9" * 5000 + b'", "to": "2026-01-01"}'),
        ("POST", "/api/schedules/tick/backfill", b'{"from": "0001-01-01", "to": "9999-12-31"}'),
        ("DELETE", "/api/schedules/" + "x" * 300, b""),
    ]
    for method, path, body in cases:
        answer = client.request(method, path, content=body, headers={"content-type": "application/json"})
        assert 400 <= answer.status_code < 500, (path, body[:60], answer.status_code, answer.text[:200])
        assert answer.json()["error"]["code"], answer.text
    assert runtime.client.hlen(runtime.store.keys.api_schedules) == 0


def test_a_schedule_stored_with_a_zone_now_refused_still_lists_and_runs(client: TestClient, runtime: Runtime) -> None:
    """Schedules created through the API before zones had to be places (``localtime``) keep working after an
    upgrade; only new ones are refused."""
    record = {"name": "legacy", "function": "report-background", "cron": "0 7 * * *", "timezone": "localtime"}
    runtime.client.hset(runtime.store.keys.api_schedules, "legacy", json.dumps({**record, "payload": {}}))
    listed = client.get("/api/schedules")
    assert listed.status_code == 200 and "legacy" in {item["name"] for item in listed.json()}
    assert client.post("/api/schedules/legacy/pause").status_code == 200
    assert client.post("/api/schedules/legacy/trigger").status_code == 202
    refused = client.post("/api/schedules", json={**record, "name": "fresh"})
    assert refused.status_code == 400 and "is not a place's zone" in refused.json()["error"]["message"]


def test_an_api_schedule_that_netlify_toml_came_to_shadow_can_still_be_deleted(
    client: TestClient, runtime: Runtime, site: Path
) -> None:
    """The file gained a schedule of its name after it was created: the file's is in force, and the API one can
    be removed to settle it (before, its DELETE answered 409 "comes from netlify.toml" for ever)."""
    from tests.support.procs import wait_for

    create(client, name="report-us", function="report-background", cron="0 7 * * *")
    toml = site / "netlify.toml"
    toml.write_text(toml.read_text() + DECLARED.replace("report-eu", "report-us"))
    wait_for(lambda: client.get("/api/schedules/report-us").json()["source"] == "file", message="the edit")

    assert client.delete("/api/schedules/report-us").status_code == 204
    assert not runtime.client.hexists(runtime.store.keys.api_schedules, "report-us")
    assert client.get("/api/schedules/report-us").json()["source"] == "file"  # the file's stays in force
    refused = client.delete("/api/schedules/report-us")
    assert refused.status_code == 409 and "comes from netlify.toml" in refused.json()["error"]["message"]
