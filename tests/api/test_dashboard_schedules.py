"""The dashboard's Schedules page (netlify.toml's and the API's schedules, with their buttons and backfill) and the
Runs page's bulk replay button, through the app with a login."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import clock
from jobs.lifecycle import new_run
from jobs.runs import Run
from jobs.schedules.state import ScheduleState
from tests.api.test_dashboard import TOKEN, csrf, login, secure  # noqa: F401 - the fixture
from tests.support.sites import FUNCTIONS, TOML, make_site

DECLARED = """
[functions."echo-background"]
  schedule = "@hourly"

[[backburner.schedules]]
  name = "echo-eu"
  function = "echo-background"
  cron = "0 6 * * *"
  payload = { region = "eu" }
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return make_site(tmp_path / "site", FUNCTIONS, TOML + DECLARED)


def failed_run(runtime, name: str = "fail-background") -> str:
    """A run that failed (its record set so: the button under test only reads and replays it)."""
    run, _ = runtime.store.create(new_run(runtime.site.get(name), "api"), {"body": "{}"})

    def fail(current: Run, pipe: object) -> None:
        current.status, current.finished_at = "failed", clock.iso(clock.now())

    runtime.store.update(run.id, fail)
    return run.id


def test_schedules_page_lists_every_schedule_with_its_source_and_buttons(secure, runtime):  # noqa: F811
    token = login(secure)
    created = secure.post(
        "/api/schedules",
        json={"name": "echo-us", "function": "echo-background", "cron": "0 7 * * *", "payload": {"region": "us"}},
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    assert created.status_code == 201
    page = secure.get("/schedules").text
    for name in ("echo-background", "echo-eu", "echo-us"):
        assert f'id="{name}"' in page
    sections = {part.split('"', 1)[0]: part for part in page.split('<section class="card fn" id="')[1:]}
    assert {name: ">api<" in part for name, part in sections.items()} == {
        "echo-background": False,
        "echo-eu": False,
        "echo-us": True,
    }
    assert "&#34;region&#34;: &#34;us&#34;" in page or '{"region": "us"}' in page
    assert page.count("/delete") == 1  # only the API's schedule can be deleted here
    assert "echo-eu" in secure.get("/functions").text  # the function lists all of its schedules

    for action in ("pause", "resume", "trigger", "delete", "backfill"):
        assert secure.post(f"/schedules/echo-us/{action}", data={}).status_code == 403

    assert secure.post("/schedules/echo-eu/pause", data={"csrf": token}).headers["location"].startswith("/schedules")
    assert runtime.client.hget(runtime.store.keys.schedule("echo-eu"), "paused") == b"1"
    refused = secure.post("/schedules/echo-eu/delete", data={"csrf": token})
    assert refused.status_code == 409 and "netlify.toml" in refused.text
    run_now = secure.post("/schedules/echo-eu/trigger", data={"csrf": token})
    run = runtime.store.get(run_now.headers["location"].split("/")[2].split("?")[0])
    assert run.schedule == "echo-eu" and run.trigger == "schedule"

    filled = secure.post(
        "/schedules/echo-us/backfill", data={"csrf": token, "from": "2026-02-01T00:00", "to": "2026-02-04T00:00"}
    )
    assert filled.status_code == 303
    assert "notice=backfilled&count=3&skipped=0" in filled.headers["location"]
    assert "3 run(s) created; 0 tick(s) skipped" in secure.get(filled.headers["location"]).text
    backfilled = runtime.store.runs(trigger="backfill")[0]
    assert sorted(r.scheduled_for for r in backfilled) == [f"2026-02-0{d}T07:00:00.000Z" for d in (1, 2, 3)]
    bad = secure.post("/schedules/echo-us/backfill", data={"csrf": token, "from": "soon", "to": "2026-02-04T00:00"})
    assert bad.status_code == 400 and "2026-03-01T14:00" in bad.text

    deleted = secure.post("/schedules/echo-us/delete", data={"csrf": token})
    assert deleted.headers["location"] == "/schedules?notice=deleted"
    assert 'id="echo-us"' not in secure.get("/schedules").text
    assert secure.post("/schedules/echo-us/pause", data={"csrf": token}).status_code == 404


def test_bulk_replay_button_counts_then_replays_each_failure_once(secure, runtime):  # noqa: F811
    token = login(secure)
    failed = [failed_run(runtime) for _ in range(3)] + [failed_run(runtime, "permanent-background")]
    assert "replay-failed" not in secure.get("/runs").text  # only with the failed filter
    page = secure.get("/runs?status=failed&function=fail-background").text
    assert "Replay 3 failed runs" in page
    assert "Replay 4 failed runs" in secure.get("/runs?status=failed").text
    assert secure.post("/runs/replay-failed", data={"function": "fail-background"}).status_code == 403

    done = secure.post("/runs/replay-failed", data={"csrf": token, "function": "fail-background"})
    assert done.status_code == 303 and "notice=replayed-many&count=3" in done.headers["location"]
    assert "Replayed 3 failed run(s)" in secure.get(done.headers["location"]).text
    replays = runtime.store.runs(trigger="replay")[0]
    assert sorted(r.replay_of for r in replays) == sorted(failed[:3])
    assert "Replay 0 failed runs" in secure.get("/runs?status=failed&function=fail-background").text
    assert "Replay 1 failed run" in secure.get("/runs?status=failed").text


def test_a_schedule_whose_last_run_retention_removed_still_says_when_it_fired(secure, runtime):  # noqa: F811
    login(secure)
    removed = new_run(runtime.site.get("echo-background"), "schedule")  # never stored, as after retention
    ScheduleState(runtime.client, runtime.store.keys).fired(
        "echo-eu", clock.parse_iso("2026-03-02T06:00:00Z"), removed.id
    )
    page = secure.get("/schedules").text
    section = page.split('id="echo-eu"', 1)[1].split("</section>", 1)[0]
    assert "since removed by retention" in section
    assert 'datetime="2026-03-02T06:00:00Z"' in section
    assert "none yet" in page.split('id="echo-background"', 1)[1].split("</section>", 1)[0]


def test_new_schedule_form_creates_one_as_the_api_does_and_explains_refusals(secure, runtime):  # noqa: F811
    token = login(secure)
    page = secure.get("/schedules").text
    assert 'action="/schedules"' in page and "<option>echo-background</option>" in page
    form = {"name": "echo-ap", "function": "echo-background", "cron": "30 5 * * 1-5", "timezone": "Asia/Tokyo"}
    assert secure.post("/schedules", data=form).status_code == 403  # no CSRF token

    created = secure.post("/schedules", data={**form, "csrf": token, "payload": '{"region": "ap"}'})
    assert created.status_code == 303 and created.headers["location"] == "/schedules?notice=created#echo-ap"
    assert "Schedule created" in secure.get(created.headers["location"]).text
    listed = {s["name"]: s for s in secure.get("/api/schedules", headers={"authorization": f"Bearer {TOKEN}"}).json()}
    made = listed["echo-ap"]
    assert (made["source"], made["schedule"], made["timezone"]) == ("api", "30 5 * * 1-5", "Asia/Tokyo")
    assert made["payload"] == {"region": "ap"} and made["last_fired"] is None

    refusals = {
        "taken": ({**form, "name": "echo-eu"}, 409, "defined in netlify.toml"),
        "cron": ({**form, "name": "x1", "cron": "61 * * * *"}, 400, "x1"),
        "zone": ({**form, "name": "x2", "timezone": "Mars/Base"}, 400, "Mars/Base"),
        "function": ({**form, "name": "x3", "function": "nope"}, 404, "nope"),
        "payload": ({**form, "name": "x4", "payload": "{oops"}, 422, "line 1, column 2"),
        "not an object": ({**form, "name": "x5", "payload": "[1]"}, 400, "x5"),
        "name": ({**form, "name": "no spaces"}, 400, "not a valid schedule name"),
    }
    for case, (data, status, words) in refusals.items():
        answer = secure.post("/schedules", data={**data, "csrf": token})
        assert (answer.status_code, words in answer.text) == (status, True), (case, answer.text[:2000])
    names = {s["name"] for s in secure.get("/api/schedules", headers={"authorization": f"Bearer {TOKEN}"}).json()}
    assert not names & {"x1", "x2", "x3", "x4", "x5", "no spaces"}
