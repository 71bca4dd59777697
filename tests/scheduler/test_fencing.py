"""A scheduler's writes land only while it leads: one cut off from Redis mid-tick (a partition, a pause) may have
its writes delivered after another scheduler took over; they are dropped, and the state never moves back."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from jobs import clock
from jobs.runtime import Runtime
from jobs.schedules.registry import Schedules
from jobs.schedules.state import ScheduleState
from jobs.writes import Fence
from scheduler.engine import Engine
from scheduler.schedules import load_schedules
from tests.scheduler.conftest import at


def stored(runtime: Runtime, name: str) -> dict[bytes, bytes]:
    return runtime.client.hgetall(runtime.store.keys.schedule(name))


def body(runtime: Runtime, run_id: str | None) -> object:
    return json.loads(runtime.store.event(run_id or "")["body"])


def runs_of(runtime: Runtime, function: str) -> list[str]:
    return [run.scheduled_for or "" for run in runtime.store.runs(function=function, limit=100)[0]]


def test_a_leader_that_lost_the_lease_fires_nothing_and_changes_no_state(
    runtime: Runtime, make_engine: Callable[..., Engine]
) -> None:
    lease = runtime.store.keys.scheduler_lease
    stale = make_engine("tick", "*/5 * * * *", catchup="all", overlap="allow")
    stale.fence = Fence(lease, "scheduler-a")
    stale.state = ScheduleState(runtime.client, runtime.store.keys, stale.fence)
    runtime.client.set(lease, "scheduler-a")
    stale.tick(at("2026-03-02T10:00:30"))  # starts the schedule while it leads
    before = stored(runtime, "tick")

    runtime.client.set(lease, "scheduler-b")  # the lead passed on; this one still trusts its lease locally
    assert stale.tick(at("2026-03-02T10:10:30")) == []  # 10:05 and 10:10 are due
    assert runs_of(runtime, "tick") == [] and stored(runtime, "tick") == before

    missed = make_engine("tick", "*/5 * * * *", catchup="none", overlap="allow")
    missed.fence, missed.state = stale.fence, stale.state
    assert missed.tick(at("2026-03-02T10:10:30")) == []  # would record 10:05 and 10:10 as missed
    assert stored(runtime, "tick") == before and runtime.client.llen(runtime.store.keys.schedule_skips("tick")) == 0

    runtime.client.set(lease, "scheduler-a")  # leads again: carries on from Redis
    assert [o.action for o in stale.tick(at("2026-03-02T10:10:30"))] == ["fired", "fired"]
    assert sorted(runs_of(runtime, "tick")) == ["2026-03-02T10:05:00.000Z", "2026-03-02T10:10:00.000Z"]


def test_a_schedules_state_never_moves_back_in_time(runtime: Runtime) -> None:
    state = ScheduleState(runtime.client, runtime.store.keys)
    state.advance("tick", at("2026-03-02T10:10"))
    state.advance("tick", at("2026-03-02T10:05"))  # a late write from a leader that was cut off
    state.fired("tick", at("2026-03-02T10:10"), "run-1010")
    state.fired("tick", at("2026-03-02T10:05"), "run-1005")  # a queued tick fired late: its run is the newest
    state.record_skips("tick", [at("2026-03-02T10:15")], "overlap")
    state.record_skips("tick", [at("2026-03-02T10:00")], "missed")
    status = state.get("tick")
    assert status.handled_until == at("2026-03-02T10:10") and status.last_fired == at("2026-03-02T10:10")
    assert status.last_run == "run-1005" and status.last_skipped == at("2026-03-02T10:15") and status.skipped == 2


def test_the_state_of_a_schedule_deleted_meanwhile_is_not_written_again(runtime: Runtime) -> None:
    state = ScheduleState(runtime.client, runtime.store.keys)
    keys = runtime.store.keys
    runtime.client.hset(keys.api_schedules, "report-us", "{}")
    state.start("report-us", clock.now(), revision="")
    assert runtime.client.exists(keys.schedule("report-us")) == 1
    runtime.client.hdel(keys.api_schedules, "report-us")
    runtime.client.delete(keys.schedule("report-us"))  # as DELETE /api/schedules/report-us does
    state.start("report-us", clock.now(), revision="")  # a leader that had not seen the delete yet
    state.advance("report-us", clock.now(), revision="")
    assert runtime.client.exists(keys.schedule("report-us")) == 0


def test_schedules_replaced_during_a_tick_are_taken_up_at_the_next(
    runtime: Runtime, make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine("tick", "*/5 * * * *", catchup="all", overlap="allow")
    other = make_engine("berlin").schedules
    engine.tick(at("2026-03-02T10:00:30"))

    def leads_while_an_edit_lands() -> bool:  # the watch thread swaps the list while this tick runs
        engine.schedules = [*engine.schedules, *other]
        return True

    engine.is_leader = leads_while_an_edit_lands
    assert [o.action for o in engine.tick(at("2026-03-02T10:05:30"))] == ["fired"]  # no KeyError for "berlin"


def test_a_schedule_deleted_during_its_tick_gets_no_run(runtime: Runtime, make_engine: Callable[..., Engine]) -> None:
    """DELETE /api/schedules/NAME answered 204 just as the leader fired the tick: no run may follow it."""
    keys = runtime.store.keys
    engine = make_engine("tick", "*/5 * * * *", catchup="all", overlap="allow")
    [schedule] = engine.schedules
    engine.schedules = [dataclasses.replace(schedule, spec=dataclasses.replace(schedule.spec, source="api"))]
    runtime.client.hset(keys.api_schedules, "tick", "{}")
    engine.tick(at("2026-03-02T10:00:30"))
    runtime.client.hdel(keys.api_schedules, "tick")  # deleted; this engine has not seen it yet
    assert engine.tick(at("2026-03-02T10:05:30")) == []
    assert runs_of(runtime, "tick") == [] and runtime.client.exists(keys.schedule_ticks("tick")) == 0


def test_a_schedule_deleted_and_created_anew_during_its_tick_runs_only_its_new_definition(runtime: Runtime) -> None:
    """DELETE then POST /api/schedules of the same name while the leader, which has not seen either yet, fires
    the tick: the old definition makes no run and writes no state; the new one fires once the watcher has it."""
    registry = Schedules(runtime.client, runtime.store.keys, lambda: runtime.site)

    def engine() -> Engine:
        api = [s for s in load_schedules(runtime.site, api=registry.from_api()) if s.name == "nightly"]
        return Engine(runtime, api, grace_s=10.0)

    registry.create("nightly", "plain", "*/5 * * * *", "UTC", {"v": 1}, at("2026-03-02T10:00:00"))
    stale = engine()
    [fired] = stale.tick(at("2026-03-02T10:05:30"))
    assert body(runtime, fired.run_id) == {"v": 1, "next_run": "2026-03-02T10:10:00.000Z"}

    registry.delete("nightly")
    registry.create("nightly", "plain", "*/5 * * * *", "UTC", {"v": 2}, at("2026-03-02T10:06:00"))
    state = stored(runtime, "nightly")
    assert stale.tick(at("2026-03-02T10:10:30")) == []  # the old definition's 10:10
    assert runs_of(runtime, "plain") == ["2026-03-02T10:05:00.000Z"] and stored(runtime, "nightly") == state

    [fired] = engine().tick(at("2026-03-02T10:10:30"))
    assert fired.action == "fired" and fired.tick == at("2026-03-02T10:10")
    assert body(runtime, fired.run_id) == {"v": 2, "next_run": "2026-03-02T10:15:00.000Z"}
