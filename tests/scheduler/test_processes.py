"""Real processes: three schedulers against one Redis, start-up refusal, and a worker running a tick."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from jobs import clock
from jobs.runtime import Runtime
from scheduler.engine import Engine
from tests.scheduler.conftest import at
from tests.support.procs import WorkerProc, wait_for
from tests.support.sites import make_site

PER_SECOND = {"BACKBURNER_TEST_SCHEDULES": json.dumps({"tick": "* * * * * *"}), "BACKBURNER_SCHEDULER_LEASE_TTL": "1.5"}


class Schedulers:
    """`backburner scheduler` subprocesses, each logging to its own file."""

    def __init__(self, site: Path, env: dict[str, str], logs: Path) -> None:
        self.args = [sys.executable, "-m", "backburner", "scheduler", "--site", str(site)]
        self.env = {**os.environ, **env}
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        with (self.logs / f"scheduler-{len(self.procs)}.log").open("wb") as log:
            proc = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=log, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self) -> list[int | None]:
        codes = []
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                codes.append(proc.wait(timeout=15))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                codes.append(proc.wait())
        return codes


@pytest.fixture
def schedulers(site: Path, env: dict[str, str], tmp_path: Path) -> Iterator[Schedulers]:
    group = Schedulers(site, {**env, **PER_SECOND}, tmp_path)
    yield group
    group.stop()


def test_three_schedulers_fire_each_tick_exactly_once_across_a_leader_kill(
    runtime: Runtime, schedulers: Schedulers
) -> None:
    lease_key = runtime.store.keys.scheduler_lease
    procs = [schedulers.start() for _ in range(3)]

    def ticks() -> list:
        return [clock.parse_iso(r.scheduled_for) for r in runtime.store.runs(function="tick", limit=1000)[0]]

    leader = wait_for(lambda: runtime.client.get(lease_key), timeout=30, message="a leader").decode()
    wait_for(lambda: len(ticks()) >= 3, timeout=30, message="three ticks")
    victim = next(proc for proc in procs if proc.pid == int(leader.split(":")[1]))
    victim.kill()  # SIGKILL: no release, the lease must expire
    victim.wait()
    killed_at = clock.now()
    successor = wait_for(
        lambda: (value := runtime.client.get(lease_key)) and value.decode() != leader and value.decode(),
        timeout=10,
        message="a new leader",
    )
    assert int(successor.split(":")[1]) in {proc.pid for proc in procs if proc is not victim}
    wait_for(lambda: len([t for t in ticks() if t > killed_at + timedelta(seconds=2)]) >= 2, timeout=15)
    codes = schedulers.stop()
    assert [code for proc, code in zip(procs, codes, strict=True) if proc is not victim] == [0, 0]
    assert runtime.client.get(lease_key) is None, "a clean stop releases the lease"

    runs = runtime.store.runs(function="tick", limit=1000)[0]
    fired = sorted(clock.parse_iso(run.scheduled_for) for run in runs)
    assert len(fired) == len(set(fired)), "a tick fired twice"
    gaps = [(a, b) for a, b in zip(fired, fired[1:], strict=False) if b - a != timedelta(seconds=1)]
    assert gaps == [], "catchup = all: ticks missed during the takeover still fire"
    assert fired[0] < killed_at < fired[-1]
    assert all(run.idempotency_key == f"schedule:tick:{run.scheduled_for}" for run in runs)
    takeover = min(clock.parse_iso(run.created_at) for run in runs if clock.parse_iso(run.created_at) > killed_at)
    assert takeover - killed_at < timedelta(seconds=5), "the dead leader was replaced within seconds"


def test_start_up_refuses_invalid_schedules(tmp_path: Path, env: dict[str, str]) -> None:
    bad = make_site(
        tmp_path / "bad",
        {"nightly": "def handler(event, context):\n    return {}\n"},
        '[functions."nightly"]\n  schedule = "0 25 * * *"\n',
    )
    command = [sys.executable, "-m", "backburner", "scheduler", "--site", str(bad)]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "nightly" in done.stderr and '"0 25 * * *"' in done.stderr and "out of range" in done.stderr

    override = {**os.environ, **env, "BACKBURNER_TEST_SCHEDULES": json.dumps({"tick": "*/0 * * * * *"})}
    command = [sys.executable, "-m", "backburner", "scheduler", "--site", env["BACKBURNER_SITE"]]
    done = subprocess.run(command, env=override, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "cannot start" in done.stderr and "'tick'" in done.stderr and '"*/0 * * * * *"' in done.stderr


def test_a_worker_runs_the_tick_with_netlifys_event_and_context(
    runtime: Runtime, worker: WorkerProc, make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine("report-background")
    engine.tick(at("2026-03-01T12:00"))
    [outcome] = engine.tick(at("2026-03-02T06:00:00.050"))  # Monday 06:00
    run = wait_for(
        lambda: (r := runtime.store.get(outcome.run_id)).status in ("succeeded", "failed") and r,
        message="the scheduled run",
    )
    assert run.status == "succeeded", run.error
    result = run.result
    assert json.loads(result["body"]) == {"next_run": "2026-03-03T06:00:00.000Z"}
    assert result["headers"]["x-nf-event"] == "schedule"
    assert result["headers"]["user-agent"] == "Netlify Clockwork"
    assert result["trigger"] == "schedule"
    assert result["scheduled_for"] == "2026-03-02T06:00:00.000Z"
    assert result["key"] == "schedule:report-background:2026-03-02T06:00:00.000Z"
