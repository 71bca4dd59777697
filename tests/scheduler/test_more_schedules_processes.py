"""Real scheduler processes with more schedules per function: a [[backburner.schedules]] entry and a schedule
created through the API while three replicas run, through a leader kill, until the API deletes it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jobs import clock
from jobs.runtime import Runtime
from tests.scheduler.conftest import FUNCTIONS, TOML
from tests.scheduler.test_processes import Schedulers
from tests.support.procs import wait_for
from tests.support.sites import make_site

MORE = """
[backburner.functions."report-*"]
  overlap = "allow"
  catchup = "all"

[[backburner.schedules]]
  name = "declared-fast"
  function = "report-background"
  cron = "0 6 * * *"
  payload = { region = "eu" }
"""
FAST = {
    "BACKBURNER_TEST_SCHEDULES": json.dumps({"declared-fast": "* * * * * *", "api-fast": "*/2 * * * * *"}),
    "BACKBURNER_SCHEDULER_LEASE_TTL": "1.5",
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return make_site(tmp_path / "site", FUNCTIONS, TOML + MORE)


@pytest.fixture
def schedulers(site: Path, env: dict[str, str], tmp_path: Path) -> Iterator[Schedulers]:
    group = Schedulers(site, {**env, **FAST}, tmp_path)
    yield group
    group.stop()


def ticks(runtime: Runtime, schedule: str) -> list[datetime]:
    runs = runtime.store.runs(function="report-background", limit=2000)[0]
    return sorted(clock.parse_iso(run.scheduled_for or "") for run in runs if run.schedule == schedule)


def test_declared_and_api_schedules_fire_once_per_tick_across_replicas(
    runtime: Runtime, client: TestClient, schedulers: Schedulers
) -> None:
    lease = runtime.store.keys.scheduler_lease
    procs = [schedulers.start() for _ in range(3)]
    leader = wait_for(lambda: runtime.client.get(lease), timeout=30, message="a leader").decode()
    wait_for(lambda: len(ticks(runtime, "declared-fast")) >= 3, timeout=30, message="declared ticks")

    created_at = clock.now()
    body = {"name": "api-fast", "function": "report-background", "cron": "0 7 * * *", "payload": {"region": "us"}}
    assert client.post("/api/schedules", json=body).status_code == 201
    first = wait_for(lambda: ticks(runtime, "api-fast"), timeout=15, message="the API schedule's first tick")[0]
    assert first - created_at < timedelta(seconds=4), "picked up by the running schedulers, no restart"

    victim = next(proc for proc in procs if proc.pid == int(leader.split(":")[1]))
    victim.kill()
    victim.wait()
    killed_at = clock.now()
    wait_for(
        lambda: (value := runtime.client.get(lease)) and value.decode() != leader, timeout=10, message="a new leader"
    )
    for name in ("declared-fast", "api-fast"):
        wait_for(
            lambda name=name: len([t for t in ticks(runtime, name) if t > killed_at + timedelta(seconds=2)]) >= 2,
            timeout=20,
            message=f"{name} ticks after the takeover",
        )

    assert client.delete("/api/schedules/api-fast").status_code == 204
    deleted_at = clock.now()
    time.sleep(3)  # nothing to wait for: the point is that nothing happens
    assert not [t for t in ticks(runtime, "api-fast") if t > deleted_at + timedelta(seconds=1.5)]
    schedulers.stop()

    runs = [r for r in runtime.store.runs(function="report-background", limit=2000)[0] if r.schedule]
    for name, step, region in (("declared-fast", 1, "eu"), ("api-fast", 2, "us")):
        fired = ticks(runtime, name)
        assert len(fired) == len(set(fired)), f"{name}: a tick fired twice"
        gaps = [b - a for a, b in zip(fired, fired[1:], strict=False) if b - a != timedelta(seconds=step)]
        assert gaps == [], f"{name}: catchup = all, so ticks missed in the takeover still fire"
        assert fired[0] < killed_at < fired[-1]
        mine = [r for r in runs if r.schedule == name]
        assert all(r.idempotency_key == f"schedule:{name}:{r.scheduled_for}" and r.trigger == "schedule" for r in mine)
        body = json.loads(runtime.store.event(mine[0].id)["body"])
        assert body["region"] == region and clock.parse_iso(body["next_run"]) - clock.parse_iso(
            mine[0].scheduled_for or ""
        ) == timedelta(seconds=step)
    logs = "".join(path.read_text() for path in schedulers.logs.glob("scheduler-*.log"))
    assert "schedules changed: added api-fast" in logs and "removed api-fast" in logs
