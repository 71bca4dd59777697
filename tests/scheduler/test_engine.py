"""The engine with an injected clock: fire times, DST, the scheduled event, limits, dedupe."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from jobs.errors import ScheduleError
from jobs.runtime import Runtime
from jobs.wiring import open_runtime
from scheduler.driver import NextTickTrigger
from scheduler.engine import Engine
from scheduler.schedules import load_schedules
from tests.scheduler.conftest import at


def drive(engine: Engine, start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """Wake the engine at ``start`` (which starts the schedule), then every ``step`` until ``end``."""
    assert engine.tick(start) == []
    fired: list[datetime] = []
    now = start
    while now < end:
        now = min(now + step, end)
        fired += [outcome.tick for outcome in engine.tick(now) if outcome.action == "fired"]
    return fired


def reference(start: datetime, end: datetime, matches: Callable[[datetime], bool]) -> list[datetime]:
    """Every whole minute in (start, end] that ``matches``: an independent brute-force oracle."""
    minute = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    found = []
    while minute <= end:
        if matches(minute):
            found.append(minute)
        minute += timedelta(minutes=1)
    return found


# Weekdays below use Python's isoweekday(): Monday 1 ... Sunday 7.
CASES = [
    ("*/15 9-10 * * *", "2026-03-02T00:00", 2, 6, lambda t: t.minute % 15 == 0 and t.hour in (9, 10)),
    ("0 6 * * 1-5", "2026-03-01T00:00", 14, 24, lambda t: (t.hour, t.minute) == (6, 0) and t.isoweekday() <= 5),
    ("@daily", "2026-03-01T00:00", 10, 24, lambda t: (t.hour, t.minute) == (0, 0)),
    # Both day fields restricted: either may match (1st, 15th, and every Friday).
    (
        "0 0 1,15 * 5",
        "2026-01-01T00:30",
        62,
        72,
        lambda t: (t.hour, t.minute) == (0, 0) and (t.day in (1, 15) or t.isoweekday() == 5),
    ),
    ("30 4 * * 7", "2026-03-01T00:00", 35, 24, lambda t: (t.hour, t.minute) == (4, 30) and t.isoweekday() == 7),
    (
        "5 */6 * * SAT,SUN",
        "2026-03-01T00:00",
        14,
        24,
        lambda t: t.minute == 5 and t.hour % 6 == 0 and t.isoweekday() >= 6,
    ),
    (
        "0 12 1 JAN,JUL *",
        "2025-12-15T00:00",
        230,
        24 * 20,
        lambda t: (t.day, t.hour, t.minute) == (1, 12, 0) and t.month in (1, 7),
    ),
]


@pytest.mark.parametrize(("expression", "start", "days", "step_h", "matches"), CASES, ids=[c[0] for c in CASES])
def test_fire_times_match_an_independent_reference(
    make_engine: Callable[..., Engine],
    expression: str,
    start: str,
    days: int,
    step_h: int,
    matches: Callable[[datetime], bool],
) -> None:
    step = timedelta(hours=step_h)
    seconds = step.total_seconds()
    engine = make_engine("tick", expression, grace_s=seconds, catchup_window_s=seconds, overlap="allow")
    begin = at(start)
    end = begin + timedelta(days=days)
    expected = reference(begin, end, matches)
    assert expected, "the case must fire at least once"
    assert drive(engine, begin, end, step) == expected


def test_spring_forward_fires_the_skipped_time_once_at_the_jump(make_engine: Callable[..., Engine]) -> None:
    # Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC; 02:30 never shows.
    engine = make_engine("berlin", overlap="allow", grace_s=60)
    fired = drive(engine, at("2026-03-28T12:00"), at("2026-03-30T12:00"), timedelta(minutes=15))
    assert fired == [at("2026-03-29T01:00"), at("2026-03-30T00:30")]


def test_fall_back_fires_the_repeated_time_once_at_its_first_occurrence(make_engine: Callable[..., Engine]) -> None:
    # Europe/Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET at 01:00 UTC; 02:30 shows twice.
    engine = make_engine("berlin", overlap="allow", grace_s=60)
    fired = drive(engine, at("2026-10-24T12:00"), at("2026-10-26T12:00"), timedelta(minutes=15))
    assert fired == [at("2026-10-25T00:30"), at("2026-10-26T01:30")]


def test_a_tick_makes_netlifys_scheduled_event(runtime: Runtime, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine("tick", "*/5 * * * *")
    engine.tick(at("2026-03-02T10:01:00"))
    [outcome] = engine.tick(at("2026-03-02T10:05:00.020"))
    assert outcome.action == "fired" and outcome.tick == at("2026-03-02T10:05")
    assert outcome.run_id is not None
    run = runtime.store.get(outcome.run_id)
    assert run.trigger == "schedule"
    assert run.scheduled_for == "2026-03-02T10:05:00.000Z"
    assert run.idempotency_key == "schedule:tick:2026-03-02T10:05:00.000Z"
    event = runtime.store.event(run.id)
    assert json.loads(event["body"]) == {"next_run": "2026-03-02T10:10:00.000Z"}
    assert event["headers"]["x-nf-event"] == "schedule"
    assert event["headers"]["user-agent"] == "Netlify Clockwork"
    assert event["httpMethod"] == "POST" and event["path"] == "/.netlify/functions/tick"
    listed, _ = runtime.store.runs(trigger="schedule")
    assert [r.id for r in listed] == [run.id]


def test_scheduled_sync_gets_30s_and_no_retries_background_keeps_its_own(
    runtime: Runtime, make_engine: Callable[..., Engine]
) -> None:
    ids = []
    for name in ("tick", "report-background"):
        engine = make_engine(name, "0 * * * *")
        engine.tick(at("2026-03-02T09:30"))
        [outcome] = engine.tick(at("2026-03-02T10:00"))
        ids.append(outcome.run_id)
    sync, background = (runtime.store.get(run_id) for run_id in ids)
    assert (sync.time_limit_s, sync.max_attempts, sync.retry_delays_s) == (30.0, 1, [])
    assert (background.time_limit_s, background.max_attempts, background.retry_delays_s) == (900.0, 2, [1.0])


def test_two_leaders_firing_the_same_tick_make_one_run(
    runtime: Runtime, settings, make_engine: Callable[..., Engine]
) -> None:
    other = open_runtime(settings)
    try:
        first = make_engine("tick", "*/5 * * * *")
        second = make_engine("tick", "*/5 * * * *", engine_runtime=other)
        first.tick(at("2026-03-02T10:01"))
        now = at("2026-03-02T10:05:01")
        # The second leader wakes before the first one recorded anything but after its run exists.
        [a] = first.tick(now)
        other.client.hset(other.store.keys.schedule("tick"), "handled_until", "2026-03-02T10:01:00.000Z")
        [b] = second.tick(now)
    finally:
        other.close()
    assert (a.action, b.action) == ("fired", "duplicate")
    assert a.run_id == b.run_id
    assert len(runtime.store.runs(function="tick")[0]) == 1


def test_first_wake_up_starts_the_schedule_without_back_filling(
    runtime: Runtime, make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine("tick", "* * * * *", catchup="all")
    assert engine.tick(at("2026-03-02T10:00:30")) == []
    assert runtime.store.runs(function="tick")[0] == []
    assert [o.tick for o in engine.tick(at("2026-03-02T10:01:00"))] == [at("2026-03-02T10:01")]


def test_next_wakeup_is_the_earliest_tick_but_never_more_than_a_second_away(
    make_engine: Callable[..., Engine],
) -> None:
    hourly = make_engine("tick", "0 * * * *")
    assert hourly.next_wakeup(at("2026-03-02T10:59:59.500")) == at("2026-03-02T11:00:00")
    assert hourly.next_wakeup(at("2026-03-02T10:30:00")) == at("2026-03-02T10:30:01")
    every_second = make_engine("tick", "*/2 * * * * *", seconds=True)
    assert every_second.next_wakeup(at("2026-03-02T10:00:00.250")) == at("2026-03-02T10:00:01.250")
    assert every_second.next_wakeup(at("2026-03-02T10:00:01.250")) == at("2026-03-02T10:00:02")


def test_start_up_refuses_an_invalid_schedule_naming_function_expression_and_reason(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ScheduleError) as caught:
        load_schedules(runtime.site, {"tick": "* * * * * * *"})
    message = str(caught.value)
    assert "'tick'" in message and '"* * * * * * *"' in message and "expected 5 fields" in message
    with caplog.at_level(logging.WARNING, logger="backburner.scheduler"):
        load_schedules(runtime.site, {"nope": "* * * * * *"})  # an API schedule may take the name later
    assert "BACKBURNER_TEST_SCHEDULES names schedules there are not (yet): nope" in caplog.text
    names = [(s.name, s.function.schedule) for s in load_schedules(runtime.site, {"tick": "*/2 * * * * *"})]
    assert names == [("berlin", "30 2 * * *"), ("report-background", "0 6 * * 1-5"), ("tick", "*/2 * * * * *")]


def test_engine_does_nothing_without_the_lease(runtime: Runtime, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine("tick", "* * * * *")
    engine.is_leader = lambda: False
    assert engine.tick(at("2026-03-02T10:00:30")) == []
    assert runtime.client.exists(runtime.store.keys.schedule("tick")) == 0


def test_the_apscheduler_trigger_starts_at_once_then_follows_the_engine(make_engine: Callable[..., Engine]) -> None:
    trigger = NextTickTrigger(make_engine("tick", "0 * * * *"))
    now = at("2026-03-02T10:59:59.600")
    assert trigger.get_next_fire_time(None, now) == now
    assert trigger.get_next_fire_time(at("2026-03-02T10:59:59"), now) == at("2026-03-02T11:00")
    # After a long suspend it does not step through every missed second.
    assert trigger.get_next_fire_time(at("2026-02-01T00:00"), now) == at("2026-03-02T11:00")


def test_an_edited_expression_fires_from_the_edit_on_never_for_its_ticks_from_before(
    runtime: Runtime, make_engine: Callable[..., Engine]
) -> None:
    """From hourly to every minute at 10:05, with catch-up "all": 10:01 to 10:05 were never ticks of the
    schedule in force, so nothing catches them up (an edited time zone is an edited expression too)."""
    assert make_engine("tick", "0 * * * *", catchup="all", overlap="allow").tick(at("2026-03-02T10:00:30")) == []
    edited = make_engine("tick", "* * * * *", catchup="all", overlap="allow")

    assert edited.tick(at("2026-03-02T10:05:00")) == []
    assert [o.tick for o in edited.tick(at("2026-03-02T10:06:00"))] == [at("2026-03-02T10:06")]
    assert len(runtime.store.runs(function="tick")[0]) == 1
