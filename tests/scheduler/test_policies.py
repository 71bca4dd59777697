"""Missed ticks (catch-up), overlapping runs, and pause/resume, driven through the engine's clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from jobs.runtime import Runtime
from jobs.schedules.state import ScheduleState
from jobs.wiring import open_runtime
from scheduler.catchup import plan_ticks
from scheduler.engine import Engine
from tests.scheduler.conftest import at


def fired(outcomes: list) -> list:
    return [o.tick for o in outcomes if o.action == "fired"]


def state(runtime: Runtime) -> ScheduleState:
    return ScheduleState(runtime.client, runtime.store.keys)


# -- catch-up: the scheduler was down from just after 10:00 until 13:20 (ticks 11:00, 12:00, 13:00 missed)


@pytest.mark.parametrize(
    ("catchup", "expected_fired", "expected_missed"),
    [
        ("none", [], ["11:00", "12:00", "13:00"]),
        ("latest", ["13:00"], ["11:00", "12:00"]),
        ("all", ["11:00", "12:00", "13:00"], []),
    ],
)
def test_catch_up_after_an_outage(
    runtime: Runtime,
    make_engine: Callable[..., Engine],
    catchup: str,
    expected_fired: list[str],
    expected_missed: list[str],
) -> None:
    engine = make_engine("tick", "0 * * * *", catchup=catchup, catchup_window_s=6 * 3600, overlap="allow")
    engine.tick(at("2026-03-02T10:00:30"))
    outcomes = engine.tick(at("2026-03-02T13:20:00"))
    assert fired(outcomes) == [at(f"2026-03-02T{t}") for t in expected_fired]
    assert [o.tick for o in outcomes if o.action == "missed"] == [at(f"2026-03-02T{t}") for t in expected_missed]
    status = state(runtime).get("tick")
    assert status.skipped == len(expected_missed)
    assert [entry["reason"] for entry in state(runtime).skips("tick")] == ["missed"] * len(expected_missed)
    # Whatever the policy, the next tick fires on time and nothing is fired twice.
    assert fired(engine.tick(at("2026-03-02T14:00:00.100"))) == [at("2026-03-02T14:00")]
    assert fired(engine.tick(at("2026-03-02T14:30:00"))) == []


def test_catch_up_never_reaches_beyond_the_window(runtime: Runtime, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine("tick", "*/10 * * * *", catchup="all", catchup_window_s=1800, overlap="allow")
    engine.tick(at("2026-03-02T00:00:30"))
    outcomes = engine.tick(at("2026-03-02T12:05:00"))  # down for 12 hours: 72 ticks, 3 inside the window
    assert fired(outcomes) == [at("2026-03-02T11:40"), at("2026-03-02T11:50"), at("2026-03-02T12:00")]
    assert len(runtime.store.runs(function="tick", limit=500)[0]) == 3


def test_a_tick_late_within_the_grace_is_on_time_even_with_catchup_none(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine("tick", "0 * * * *", catchup="none", grace_s=10)
    engine.tick(at("2026-03-02T10:30"))
    assert fired(engine.tick(at("2026-03-02T11:00:09"))) == [at("2026-03-02T11:00")]
    assert [o.action for o in engine.tick(at("2026-03-02T12:00:11"))] == ["missed"]


# -- overlap: the previous scheduled run is still active (no worker here, so runs stay queued until cancelled)


def test_overlap_skip_records_the_skipped_tick_and_fires_again_once_the_run_ends(
    runtime: Runtime, make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine("tick", "*/5 * * * *", overlap="skip")
    engine.tick(at("2026-03-02T10:01"))
    [first] = engine.tick(at("2026-03-02T10:05:00.010"))
    [skipped] = engine.tick(at("2026-03-02T10:10:00.010"))
    assert (first.action, skipped.action, skipped.run_id) == ("fired", "skipped", first.run_id)
    status = state(runtime).get("tick")
    assert status.skipped == 1 and status.last_skipped == at("2026-03-02T10:10")
    assert state(runtime).skips("tick") == [
        {"tick": "2026-03-02T10:10:00.000Z", "reason": "overlap", "blocking_run": first.run_id}
    ]
    runtime.lifecycle.cancel(first.run_id)  # the run ends
    [third] = engine.tick(at("2026-03-02T10:15:00.010"))
    assert third.action == "fired" and third.run_id != first.run_id
    assert len(runtime.store.runs(function="tick")[0]) == 2


def test_overlap_allow_always_creates(runtime: Runtime, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine("tick", "*/5 * * * *", overlap="allow")
    engine.tick(at("2026-03-02T10:01"))
    for minute in ("05", "10", "15"):
        assert [o.action for o in engine.tick(at(f"2026-03-02T10:{minute}:00.010"))] == ["fired"]
    runs = runtime.store.runs(function="tick")[0]
    assert sorted(run.status for run in runs) == ["queued"] * 3
    assert state(runtime).get("tick").skipped == 0


def test_overlap_queue_runs_one_waiting_tick_after_the_previous_run(
    runtime: Runtime, make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine("tick", "*/5 * * * *", overlap="queue")
    engine.tick(at("2026-03-02T10:01"))
    [first] = engine.tick(at("2026-03-02T10:05:00.010"))
    [waiting] = engine.tick(at("2026-03-02T10:10:00.010"))
    [full] = engine.tick(at("2026-03-02T10:15:00.010"))
    assert (first.action, waiting.action, full.action) == ("fired", "queued", "skipped")
    assert state(runtime).get("tick").pending == at("2026-03-02T10:10")
    assert state(runtime).skips("tick")[0]["reason"] == "queue-full"
    assert engine.tick(at("2026-03-02T10:16")) == []  # still running: the queued tick keeps waiting
    runtime.lifecycle.cancel(first.run_id)
    [queued] = engine.tick(at("2026-03-02T10:16:01"))
    assert queued.action == "fired" and queued.tick == at("2026-03-02T10:10")
    assert runtime.store.get(queued.run_id).scheduled_for == "2026-03-02T10:10:00.000Z"
    assert state(runtime).get("tick").pending is None


# -- pause / resume


def test_pause_survives_a_scheduler_restart_and_resume_does_not_catch_up(
    runtime: Runtime, settings, make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine("tick", "*/5 * * * *", catchup="all", overlap="allow")
    engine.tick(at("2026-03-02T10:01"))
    state(runtime).pause("tick")
    assert engine.tick(at("2026-03-02T10:05:00.010")) == []
    # A restart: a new process with its own Redis connection and engine, reading state from Redis only.
    restarted_runtime = open_runtime(settings)
    try:
        restarted = make_engine("tick", "*/5 * * * *", catchup="all", overlap="allow", engine_runtime=restarted_runtime)
        assert restarted.tick(at("2026-03-02T10:10:00.010")) == []
        assert ScheduleState(restarted_runtime.client, restarted_runtime.store.keys).get("tick").paused
        state(runtime).resume("tick", at("2026-03-02T10:12"))
        # 10:05 and 10:10 fell in the pause: catchup = "all" does not bring them back.
        assert fired(restarted.tick(at("2026-03-02T10:15:00.010"))) == [at("2026-03-02T10:15")]
    finally:
        restarted_runtime.close()
    assert [run.scheduled_for for run in runtime.store.runs(function="tick")[0]] == ["2026-03-02T10:15:00.000Z"]


def test_the_handled_mark_moves_only_when_needed(make_engine: Callable[..., Engine]) -> None:
    daily = make_engine("tick", "0 6 * * *").schedules[0].cron
    now = at("2026-03-02T12:00")
    behind = plan_ticks(
        daily, catchup="latest", window_s=3600, grace_s=10, handled_until=at("2026-03-02T06:00"), now=now
    )
    assert behind.fire == [] and behind.until == now  # fell behind the window: jump to now, once
    current = plan_ticks(daily, catchup="latest", window_s=3600, grace_s=10, handled_until=now, now=now)
    assert current.until is None  # nothing due, nothing to write


def test_a_queued_tick_that_fires_after_a_newer_one_is_what_the_next_overlap_check_sees(
    runtime: Runtime, make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """10:10 waits behind 10:05's run; that run ends just as the 10:15 tick is handled, so 10:15 fires first and
    10:10 after it. The next tick must then see 10:10's run (the newest made), not 10:15's, however old its tick."""
    import scheduler.engine as engine_module

    engine = make_engine("tick", "*/5 * * * *", catchup="all", overlap="queue")
    engine.tick(at("2026-03-02T10:00:30"))
    [first] = engine.tick(at("2026-03-02T10:05:30"))
    assert [o.action for o in engine.tick(at("2026-03-02T10:10:30"))] == ["queued"]
    looked_up = engine_module.existing_tick_run

    def first_run_ends_now(*args: object, **kwargs: object) -> str | None:  # the worker finishes it at this moment
        if runtime.store.get(first.run_id).status == "queued":
            runtime.lifecycle.cancel(first.run_id)
        return looked_up(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_module, "existing_tick_run", first_run_ends_now)
    [newer] = [o for o in engine.tick(at("2026-03-02T10:15:30")) if o.action == "fired"]
    monkeypatch.undo()
    runtime.lifecycle.cancel(newer.run_id)
    [older] = engine.tick(at("2026-03-02T10:16:00"))  # the queued 10:10 fires now
    assert older.action == "fired" and older.tick == at("2026-03-02T10:10")
    assert state(runtime).get("tick").last_run == older.run_id
    assert [o.action for o in engine.tick(at("2026-03-02T10:20:30"))] == ["queued"]  # 10:10's run is still queued
