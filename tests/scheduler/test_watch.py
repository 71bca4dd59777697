"""Schedules follow edits of netlify.toml and of inline configs while the scheduler runs."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.runtime import Runtime
from jobs.schedules.state import ScheduleState
from jobs.site.snapshot import SiteSnapshot
from scheduler.schedules import load_schedules
from scheduler.watch import ScheduleWatcher
from tests.support.procs import wait_for
from tests.support.sites import make_site

NIGHTLY = '[functions."nightly"]\n  schedule = "0 3 * * *"\n'
PLAIN = "def handler(event, context):\n    return {'statusCode': 200}\n"


def write(path: Path, text: str) -> None:
    """Write and move the file's time on, so the edit shows even within one clock tick."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


@pytest.fixture
def watched(tmp_path: Path) -> tuple[Path, ScheduleWatcher]:
    root = make_site(tmp_path / "site", {"nightly": PLAIN, "other": PLAIN}, NIGHTLY)
    sites = SiteSnapshot(root, interval_s=0)  # the driver's cadence, not the snapshot's, is under test here
    return root, ScheduleWatcher(sites, load_schedules(sites.site))


def names(schedules):
    return {s.name: s.function.schedule for s in schedules}


def test_nothing_changes_until_a_schedule_does(watched) -> None:
    root, watcher = watched
    assert watcher.check() is None
    write(root / "netlify.toml", NIGHTLY + '\n[build]\n  publish = "dist"\n')
    assert watcher.check() is None  # the file changed, its schedules did not


def test_a_changed_added_or_removed_schedule_is_picked_up(watched, caplog) -> None:
    root, watcher = watched
    caplog.set_level(logging.INFO, "backburner.scheduler")
    write(root / "netlify.toml", '[functions."nightly"]\n  schedule = "30 4 * * *"\n')
    assert names(watcher.check()) == {"nightly": "30 4 * * *"}
    assert "changed nightly (30 4 * * *)" in caplog.text

    write(root / "netlify" / "functions" / "other.py", 'config = {"schedule": "@hourly"}\n' + PLAIN)
    assert names(watcher.check()) == {"nightly": "30 4 * * *", "other": "@hourly"}
    assert "added other (@hourly)" in caplog.text

    write(root / "netlify.toml", "")
    assert names(watcher.check()) == {"other": "@hourly"}
    assert "removed nightly" in caplog.text


def test_a_broken_edit_keeps_the_schedules_in_force_and_is_reported_once(watched, caplog) -> None:
    root, watcher = watched
    write(root / "netlify.toml", '[functions."nightly"]\n  schedule = "0 25 * * *"\n')
    assert watcher.check() is None
    assert watcher.check() is None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "nightly" in errors[0].getMessage() and "0 25 * * *" in errors[0].getMessage()
    assert names(watcher.schedules) == {"nightly": "0 3 * * *"}

    write(root / "netlify.toml", '[functions."nightly"]\n  schedule = "0 5 * * *"\n')
    assert names(watcher.check()) == {"nightly": "0 5 * * *"}


@contextlib.contextmanager
def running_scheduler(root: Path, env: dict[str, str], log: Path) -> Iterator[None]:
    """A real `backburner scheduler` on ``root``, its output in ``log``; stopped on the way out."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backburner", "scheduler", "--site", str(root)],
            env={**os.environ, **env},
            stdout=out,
            stderr=out,
        )
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_running_scheduler_starts_a_schedule_added_to_netlify_toml(
    tmp_path: Path, env: dict[str, str], runtime: Runtime
) -> None:
    root = make_site(tmp_path / "live", {"nightly": PLAIN, "hourly": PLAIN}, NIGHTLY)
    log = tmp_path / "scheduler.log"
    with running_scheduler(root, env, log):
        state = ScheduleState(runtime.client, runtime.store.keys)
        wait_for(lambda: state.get("nightly").handled_until is not None, message="the first schedule to start")
        assert state.get("hourly").handled_until is None
        write(root / "netlify.toml", NIGHTLY + '[functions."hourly"]\n  schedule = "@hourly"\n')
        wait_for(lambda: state.get("hourly").handled_until is not None, timeout=20, message="the added schedule")
        assert "schedules changed: added hourly (@hourly)" in log.read_text()


def test_a_schedule_removed_from_netlify_toml_is_forgotten_so_it_starts_afresh_if_it_comes_back(
    tmp_path: Path, env: dict[str, str], runtime: Runtime
) -> None:
    """Its ticks while it was gone were never due: kept, its old state would catch them up when it came back."""
    hourly = '[functions."hourly"]\n  schedule = "@hourly"\n'
    root = make_site(tmp_path / "live", {"nightly": PLAIN, "hourly": PLAIN}, NIGHTLY + hourly)
    log = tmp_path / "scheduler.log"
    with running_scheduler(root, env, log):
        state = ScheduleState(runtime.client, runtime.store.keys)
        wait_for(lambda: state.get("hourly").handled_until is not None, message="the schedules to start")
        assert state.get("hourly").cron == "@hourly UTC"
        write(root / "netlify.toml", NIGHTLY)
        wait_for(lambda: state.get("hourly").handled_until is None, timeout=20, message="the removed one forgotten")
        assert "schedules changed: removed hourly" in log.read_text()
        assert state.get("nightly").handled_until is not None
