"""``[[backburner.schedules]]``: more schedules per function, each with its own payload, checked where written."""

from __future__ import annotations

from pathlib import Path

from jobs.site import check_site, load_site
from jobs.site.model import ScheduleSpec
from tests.jobs.test_site import functions, line_of, make_site

TOML = """
[functions."report-background"]
  schedule = "@daily"

[[backburner.schedules]]
  name = "report-eu"
  function = "report-background"
  cron = "0 6 * * 1-5"
  timezone = "Europe/Berlin"
  payload = { region = "eu", tags = ["a", "b"], nested = { on = true } }

[[backburner.schedules]]
  name = "report-us"
  function = "report-background"
  cron = "0 6 * * 1-5"
"""


def test_declared_schedules_join_the_functions_own(tmp_path: Path) -> None:
    site = load_site(make_site(tmp_path, TOML, functions("report-background.py")))
    assert site.schedules == [
        ScheduleSpec("report-background", "report-background", "@daily", "UTC"),
        ScheduleSpec(
            "report-eu",
            "report-background",
            "0 6 * * 1-5",
            "Europe/Berlin",
            {"region": "eu", "tags": ["a", "b"], "nested": {"on": True}},
        ),
        ScheduleSpec("report-us", "report-background", "0 6 * * 1-5", "UTC", {}),
    ]
    assert all(spec.source == "file" for spec in site.schedules)
    assert "schedules" not in site.settings


BROKEN = """
[[backburner.schedules]]
  name = "report-background"
  function = "nope"
  cron = "0 25 * * *"
  timezone = "Mars/Base"

[[backburner.schedules]]
  name = "bad name"
  function = "report-background"
  cron = "@daily"
  payload = { next_run = "x", day = 2026-01-01 }
  extras = 1

[[backburner.schedules]]
  name = "report-eu"
  function = "report-background"
"""


def test_every_problem_of_an_entry_is_reported_at_its_own_line(tmp_path: Path) -> None:
    toml = TOML + BROKEN
    root = make_site(tmp_path, toml, functions("report-background.py"))
    site, problems = check_site(root)
    assert site is not None
    found = {(p.line, p.key): p.message for p in problems}
    taken = line_of(root, 'name = "report-background"')
    assert "already the name of a function's own schedule" in found[(taken, "backburner.schedules[2].name")]
    assert "no function 'nope'" in found[(line_of(root, 'function = "nope"'), "backburner.schedules[2].function")]
    assert "out of range" in found[(line_of(root, 'cron = "0 25'), "backburner.schedules[2].cron")]
    assert "unknown time zone" in found[(line_of(root, "Mars/Base"), "backburner.schedules[2].timezone")]
    assert "not a valid schedule name" in found[(line_of(root, '"bad name"'), "backburner.schedules[3].name")]
    payload = found[(line_of(root, "next_run ="), "backburner.schedules[3].payload")]
    assert "cannot set 'next_run'" in payload
    assert "unknown key 'extras'" in found[(line_of(root, "extras ="), "backburner.schedules[3].extras")]
    dup = [p for p in problems if p.key == "backburner.schedules[4].name"]
    assert dup and "already the name of a schedule" in dup[0].message
    missing = [p for p in problems if p.key == "backburner.schedules[4]"]
    assert missing and "'cron' is missing" in missing[0].message
    headers = [n for n, line in enumerate(toml.splitlines(), start=1) if line == "[[backburner.schedules]]"]
    assert missing[0].line == headers[4]  # the entry's own [[...]] line
    assert len(problems) == 9, [str(p) for p in problems]


def test_payload_values_must_be_json(tmp_path: Path) -> None:
    toml = """
[[backburner.schedules]]
  name = "dated"
  function = "report-background"
  cron = "@daily"
  payload = { day = 2026-01-01 }
"""
    root = make_site(tmp_path, toml, functions("report-background.py"))
    _, problems = check_site(root)
    assert [(p.line, p.key) for p in problems] == [(line_of(root, "payload ="), "backburner.schedules[0].payload")]
    assert "JSON values only" in problems[0].message


def test_not_an_array_of_tables(tmp_path: Path) -> None:
    root = make_site(tmp_path, '[backburner]\n  schedules = "daily"\n', functions("a.py"))
    _, problems = check_site(root)
    assert [(p.key, p.line) for p in problems] == [("backburner.schedules", 2)]
    assert "array of tables" in problems[0].message
