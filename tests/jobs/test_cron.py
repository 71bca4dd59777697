"""jobs.site.cron against an independent brute-force reference, plus DST, limits and error messages.

The reference below shares no code with jobs.site.cron: it parses the 5-field dialect itself, matches
naive local times minute by minute, and maps them to instants by simulating the zone's wall clock
("a run fires at the first instant the clock shows its time or later").
"""

from __future__ import annotations

import bisect
import functools
import itertools
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import jobs.site.cron as cron_module
from jobs.errors import ScheduleError
from jobs.site.cron import MACROS, Cron, parse_cron

# --------------------------------------------------------------------------- reference


REF_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@hourly": "0 * * * *",
}
REF_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
REF_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (lowest, highest writable, where "*" and "a/n" end, names -> number)
REF_FIELDS = [
    (0, 59, 59, {}),
    (0, 23, 23, {}),
    (1, 31, 31, {}),
    (1, 12, 12, {n: i + 1 for i, n in enumerate(REF_MONTHS)}),
    (0, 7, 6, {n: i for i, n in enumerate(REF_DAYS)}),
]


def ref_field(text: str, index: int) -> set[int]:
    low, high, top, names = REF_FIELDS[index]

    def number(token: str) -> int:
        value = names[token.lower()] if token.lower() in names else int(token)
        assert low <= value <= high
        return value

    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            first, last = low, top
        elif "-" in body:
            first, last = (number(x) for x in body.split("-"))
            if index == 4 and last == 0:  # FRI-SUN
                last = 7
        else:
            first = number(body)
            last = top if step_text else first
        values.update(v for v in range(low, high + 1) if first <= v <= last and (v - first) % step == 0)
    if index == 4:
        values = {0 if v == 7 else v for v in values}
    return values


@functools.cache
def ref_sets(expression: str) -> tuple[frozenset[int], ...]:
    text = REF_MACROS.get(expression.lower(), expression)
    fields = text.split()
    assert len(fields) == 5
    return tuple(frozenset(ref_field(f, i)) for i, f in enumerate(fields))


def ref_day_matches(expression: str, day: datetime) -> bool:
    _, _, doms, months, dows = ref_sets(expression)
    if day.month not in months:
        return False
    dom_ok = day.day in doms
    dow_ok = day.isoweekday() % 7 in dows  # isoweekday: Monday 1 .. Sunday 7
    dom_all, dow_all = doms == set(range(1, 32)), dows == set(range(7))
    return (dom_ok and dow_ok) if (dom_all or dow_all) else (dom_ok or dow_ok)


@functools.cache
def ref_naive(expression: str, start: datetime, end: datetime) -> tuple[datetime, ...]:
    """Naive local fire times in [start, end): days that match, then every minute of those days."""
    minutes, hours = ref_sets(expression)[:2]
    found = []
    day = start.replace(hour=0, minute=0)
    while day < end:
        if ref_day_matches(expression, day):
            for hour, minute in itertools.product(range(24), range(60)):
                if hour in hours and minute in minutes:
                    moment = day.replace(hour=hour, minute=minute)
                    if start <= moment < end:
                        found.append(moment)
        day += timedelta(days=1)
    return tuple(found)


@functools.cache
def ref_clock(zone: str, start: datetime, end: datetime) -> tuple[datetime, list[datetime]]:
    """The zone's wall clock at every UTC minute in [start, end], as a running maximum."""
    tz = ZoneInfo(zone)
    count = int((end - start) / timedelta(minutes=1)) + 1
    walls = ((start + timedelta(minutes=k)).astimezone(tz).replace(tzinfo=None) for k in range(count))
    return start, list(itertools.accumulate(walls, max))


def ref_instants(expression: str, zone: str, lo: datetime, hi: datetime) -> list[datetime]:
    """Fire instants t with lo < t <= hi: each naive fire time at the first minute the clock reaches it."""
    grid_start, high_water = ref_clock(zone, lo - timedelta(days=1), hi + timedelta(days=1))
    # Every zone's clock stays within a day of UTC, so this naive range covers the clock's.
    naive = ref_naive(
        expression,
        (lo - timedelta(days=2)).replace(tzinfo=None),
        (hi + timedelta(days=2)).replace(tzinfo=None),
    )
    out: list[datetime] = []
    for wall in naive:
        if wall <= high_water[0]:
            continue
        instant = grid_start + timedelta(minutes=bisect.bisect_left(high_water, wall))
        if lo < instant <= hi and (not out or instant > out[-1]):
            out.append(instant)
    return out


# --------------------------------------------------------------------------- comparisons

EXPRESSIONS = [
    "0 6 * * 1-5",
    "*/15 * * * *",
    "0 0 1,15 * 5",  # both day fields restricted: the 1st, the 15th and every Friday
    "0 0 13 * FRI",
    "0 12 * * 7",
    "0 12 * * 0",
    "30 4 1 1 *",
    "0 0 29 2 *",
    "5-10/2 */3 * JAN-MAR MON-FRI",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@yearly",
    "0 9-17 * * MON-FRI",
    "15,45 8-18/2 * * *",
    "0 0 * * sat,SUN",
    "0 18 * * FRI-SUN",
    "0 0 */2 * 1",  # */2 is restricted: odd days OR Mondays
    "0 0 1-31 * 1",  # a full day-of-month is unrestricted: Mondays only
    "0 0 1 * 0-6",  # a full day-of-week is unrestricted: the 1st only
    "0 0 1 * */1",
    "0 0 1 * 0-7",
    "0 22 * * 1-7/2",
    "*/20 1-3 * * *",
    "30 2 * * *",
    "0 2 * * *",
    "59 1 * * *",
    "0 3 * * *",
    "0 0 31 * *",
    "0 12 1-7 * MON",
    "5/15 * * * *",
    "0 0,12 * mar-may *",
    "1-5 0 * * *",
    "0 0 * * 1/2",
    "7 7 7 * *",
]
WINDOWS = {  # each crosses the US and the EU daylight-saving change of its season
    "spring": (datetime(2024, 3, 8, tzinfo=UTC), datetime(2024, 4, 2, tzinfo=UTC)),
    "autumn": (datetime(2024, 10, 24, tzinfo=UTC), datetime(2024, 11, 6, tzinfo=UTC)),
}
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata"]  # Kolkata: +05:30, no DST
CASES = [(season, zone) for season in WINDOWS for zone in ZONES if season == "spring" or zone in (ZONES[1:3])]


def sample_moments(expected: list[datetime], lo: datetime, hi: datetime, zone: str) -> Iterable[datetime]:
    rng = random.Random(f"{lo}{zone}{len(expected)}")
    span = (hi - lo).total_seconds()
    picks = [lo + timedelta(seconds=rng.uniform(0, span)) for _ in range(8)]
    fires = expected[:2] + expected[-2:] + rng.sample(expected, min(3, len(expected)))
    picks += fires + [t - timedelta(microseconds=1) for t in fires] + [t + timedelta(seconds=30) for t in fires]
    tz = ZoneInfo(zone)
    return [t.astimezone(tz) if i % 2 else t for i, t in enumerate(picks)]  # half as local times


def latest(cron: Cron, since: datetime, moment: datetime) -> datetime | None:
    """The last fire time at or before ``moment`` as the scheduler's catch-up finds it: ``between``'s last."""
    due = cron.between(since, moment)
    return due[-1] if due else None


@pytest.mark.parametrize(("season", "zone"), CASES)
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_matches_reference(expression: str, season: str, zone: str) -> None:
    lo, hi = WINDOWS[season]
    expected = ref_instants(expression, zone, lo, hi)
    cron = parse_cron(expression, zone)
    assert cron.between(lo, hi) == expected
    for moment in sample_moments(expected, lo, hi, zone):
        later = bisect.bisect_right(expected, moment)
        if later < len(expected):
            assert cron.next_after(moment) == expected[later], moment
        if later > 0:
            assert latest(cron, lo, moment) == expected[later - 1], moment


LONG_EXPRESSIONS = [
    "30 4 1 1 *",
    "0 0 29 2 *",
    "@yearly",
    "@monthly",
    "0 9 1 */3 *",
    "0 0 31 * *",
    "0 0 31 2 MON",  # the impossible 31 February adds nothing; Mondays in February still fire
]


@pytest.mark.parametrize(("zone", "offset"), [("UTC", timedelta(0)), ("Asia/Tokyo", timedelta(hours=9))])
@pytest.mark.parametrize("expression", LONG_EXPRESSIONS)
def test_rare_schedules_over_years(expression: str, zone: str, offset: timedelta) -> None:
    start, end = datetime(2023, 1, 1), datetime(2034, 1, 1)
    # Asia/Tokyo has had no DST since 1951, so each wall time maps to wall - 9 h.
    expected = [(t - offset).replace(tzinfo=UTC) for t in ref_naive(expression, start, end)]
    lo, hi = (start - offset).replace(tzinfo=UTC), (end - offset).replace(tzinfo=UTC)
    cron = parse_cron(expression, zone)
    assert cron.between(lo - timedelta(seconds=1), hi - timedelta(seconds=1)) == expected
    assert cron.next_runs(lo - timedelta(seconds=1), len(expected)) == expected
    assert latest(cron, lo - timedelta(seconds=1), expected[-1] + timedelta(days=20)) == expected[-1]


def test_leap_day_schedule_fires_only_in_leap_years_and_skips_2100() -> None:
    cron = parse_cron("0 0 29 2 *")
    runs = cron.next_runs(datetime(2023, 6, 1, tzinfo=UTC), 3)
    assert [t.year for t in runs] == [2024, 2028, 2032]
    assert cron.next_after(datetime(2097, 1, 1, tzinfo=UTC)) == datetime(2104, 2, 29, tzinfo=UTC)
    assert cron.between(datetime(2096, 1, 1, tzinfo=UTC), datetime(2103, 12, 31, tzinfo=UTC)) == [
        datetime(2096, 2, 29, tzinfo=UTC)
    ]


def test_or_rule_example_from_crontab_manual() -> None:
    runs = parse_cron("30 4 1,15 * 5").between(
        datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 4, 30, 23, 59, tzinfo=UTC)
    )
    # April 2024: the 1st and the 15th (Mondays), plus Fridays 5, 12, 19 and 26.
    assert [t.day for t in runs] == [1, 5, 12, 15, 19, 26]
    assert all((t.hour, t.minute) == (4, 30) for t in runs)


def test_sunday_is_both_0_and_7_and_names_ignore_case() -> None:
    after = datetime(2024, 5, 1, tzinfo=UTC)
    sundays = [datetime(2024, 5, d, 12, tzinfo=UTC) for d in (5, 12, 19)]
    for expression in ("0 12 * * 0", "0 12 * * 7", "0 12 * * SUN", "0 12 * * sun", "0 12 * * Sun"):
        assert parse_cron(expression).next_runs(after, 3) == sundays
    assert parse_cron("0 0 1 jan *").next_after(after) == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_cron("@DAILY").next_after(after) == datetime(2024, 5, 2, tzinfo=UTC)


def test_macros_table() -> None:
    assert dict(MACROS) == REF_MACROS
    for macro, text in MACROS.items():
        after = datetime(2024, 7, 9, 13, 5, tzinfo=UTC)
        assert parse_cron(macro).next_runs(after, 3) == parse_cron(text).next_runs(after, 3)


# --------------------------------------------------------------------------- daylight saving time

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


DST_CASES = [
    # Berlin, spring 2024-03-31: 02:00 CET -> 03:00 CEST at 01:00 UTC.
    (
        BERLIN,
        "30 2 * * *",
        utc(2024, 3, 29, 12),
        utc(2024, 4, 1, 12),
        [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1), utc(2024, 4, 1, 0, 30)],
    ),
    (
        BERLIN,
        "0 * * * *",
        utc(2024, 3, 30, 22, 30),
        utc(2024, 3, 31, 3, 30),
        [utc(2024, 3, 30, 23), utc(2024, 3, 31, 0), utc(2024, 3, 31, 1), utc(2024, 3, 31, 2), utc(2024, 3, 31, 3)],
    ),
    (
        BERLIN,
        "*/15 * * * *",
        utc(2024, 3, 31, 0, 30),
        utc(2024, 3, 31, 1, 30),
        [utc(2024, 3, 31, 0, 45), utc(2024, 3, 31, 1), utc(2024, 3, 31, 1, 15), utc(2024, 3, 31, 1, 30)],
    ),
    (
        BERLIN,
        "0 3 * * *",
        utc(2024, 3, 29, 12),
        utc(2024, 4, 1, 12),
        [utc(2024, 3, 30, 2), utc(2024, 3, 31, 1), utc(2024, 4, 1, 1)],
    ),
    (BERLIN, "0 2 * * *", utc(2024, 3, 30, 12), utc(2024, 4, 1, 12), [utc(2024, 3, 31, 1), utc(2024, 4, 1, 0)]),
    # Berlin, autumn 2024-10-27: 03:00 CEST -> 02:00 CET at 01:00 UTC; 02:00-02:59 happens twice.
    (
        BERLIN,
        "30 2 * * *",
        utc(2024, 10, 25, 12),
        utc(2024, 10, 28, 12),
        [utc(2024, 10, 26, 0, 30), utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)],
    ),
    (
        BERLIN,
        "0 * * * *",
        utc(2024, 10, 26, 22, 30),
        utc(2024, 10, 27, 3, 30),
        [utc(2024, 10, 26, 23), utc(2024, 10, 27, 0), utc(2024, 10, 27, 2), utc(2024, 10, 27, 3)],
    ),
    (
        BERLIN,
        "*/15 * * * *",
        utc(2024, 10, 26, 23, 30),
        utc(2024, 10, 27, 2, 30),
        [utc(2024, 10, 26, 23, 45)]
        + [utc(2024, 10, 27, 0, m) for m in (0, 15, 30, 45)]
        + [utc(2024, 10, 27, 2, m) for m in (0, 15, 30)],
    ),
    (
        BERLIN,
        "0 3 * * *",
        utc(2024, 10, 25, 12),
        utc(2024, 10, 28, 12),
        [utc(2024, 10, 26, 1), utc(2024, 10, 27, 2), utc(2024, 10, 28, 2)],
    ),
    # New York, spring 2024-03-10: 02:00 EST -> 03:00 EDT at 07:00 UTC.
    (
        NEW_YORK,
        "30 2 * * *",
        utc(2024, 3, 8, 12),
        utc(2024, 3, 11, 12),
        [utc(2024, 3, 9, 7, 30), utc(2024, 3, 10, 7), utc(2024, 3, 11, 6, 30)],
    ),
    (
        NEW_YORK,
        "0 * * * *",
        utc(2024, 3, 10, 4, 30),
        utc(2024, 3, 10, 8, 30),
        [utc(2024, 3, 10, 5), utc(2024, 3, 10, 6), utc(2024, 3, 10, 7), utc(2024, 3, 10, 8)],
    ),
    (
        NEW_YORK,
        "*/15 * * * *",
        utc(2024, 3, 10, 6, 30),
        utc(2024, 3, 10, 7, 30),
        [utc(2024, 3, 10, 6, 45), utc(2024, 3, 10, 7), utc(2024, 3, 10, 7, 15), utc(2024, 3, 10, 7, 30)],
    ),
    (
        NEW_YORK,
        "0 3 * * *",
        utc(2024, 3, 8, 12),
        utc(2024, 3, 11, 12),
        [utc(2024, 3, 9, 8), utc(2024, 3, 10, 7), utc(2024, 3, 11, 7)],
    ),
    # New York, autumn 2024-11-03: 02:00 EDT -> 01:00 EST at 06:00 UTC; 01:00-01:59 happens twice.
    (
        NEW_YORK,
        "30 2 * * *",
        utc(2024, 11, 1, 12),
        utc(2024, 11, 4, 12),
        [utc(2024, 11, 2, 6, 30), utc(2024, 11, 3, 7, 30), utc(2024, 11, 4, 7, 30)],
    ),
    (
        NEW_YORK,
        "30 1 * * *",
        utc(2024, 11, 2, 12),
        utc(2024, 11, 4, 12),
        [utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)],
    ),
    (
        NEW_YORK,
        "0 * * * *",
        utc(2024, 11, 3, 3, 30),
        utc(2024, 11, 3, 8, 30),
        [utc(2024, 11, 3, 4), utc(2024, 11, 3, 5), utc(2024, 11, 3, 7), utc(2024, 11, 3, 8)],
    ),
    (
        NEW_YORK,
        "*/15 * * * *",
        utc(2024, 11, 3, 5, 30),
        utc(2024, 11, 3, 7, 30),
        [utc(2024, 11, 3, 5, 45), utc(2024, 11, 3, 7), utc(2024, 11, 3, 7, 15), utc(2024, 11, 3, 7, 30)],
    ),
    (
        NEW_YORK,
        "0 3 * * *",
        utc(2024, 11, 1, 12),
        utc(2024, 11, 4, 12),
        [utc(2024, 11, 2, 7), utc(2024, 11, 3, 8), utc(2024, 11, 4, 8)],
    ),
]


@pytest.mark.parametrize(("zone", "expression", "start", "end", "expected"), DST_CASES)
def test_dst_exact_instants(
    zone: str, expression: str, start: datetime, end: datetime, expected: list[datetime]
) -> None:
    cron = parse_cron(expression, zone)
    runs = cron.between(start, end)
    assert runs == expected
    assert len(set(runs)) == len(runs)
    assert all(t.tzinfo is UTC for t in runs)
    assert cron.next_runs(start, len(expected)) == expected
    assert [cron.next_after(t) for t in [start, *expected[:-1]]] == expected
    assert [latest(cron, start, t) for t in expected] == expected  # "at or before" includes the tick itself


def test_every_minute_across_both_berlin_changes_never_repeats_or_stalls() -> None:
    cron = parse_cron("* * * * *", BERLIN)
    spring = cron.between(utc(2024, 3, 31, 0, 50), utc(2024, 3, 31, 1, 10))
    # 01:51..01:59 CET, then the jump (02:00-02:59 and 03:00 CEST merge at 01:00 UTC), then 03:01...
    assert spring == [utc(2024, 3, 31, 0, m) for m in range(51, 60)] + [utc(2024, 3, 31, 1, m) for m in range(11)]
    autumn = cron.between(utc(2024, 10, 27, 0, 50), utc(2024, 10, 27, 2, 10))
    # The first pass of 02:xx runs (00:xx UTC); the repeat (01:xx UTC) does not; 03:00 CET is 02:00 UTC.
    assert autumn == [utc(2024, 10, 27, 0, m) for m in range(51, 60)] + [utc(2024, 10, 27, 2, m) for m in range(11)]


def test_moments_in_the_repeated_hour() -> None:
    cron = parse_cron("*/15 * * * *", BERLIN)
    second_pass = datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=ZoneInfo(BERLIN))  # 01:30 UTC
    assert cron.next_after(second_pass) == utc(2024, 10, 27, 2)
    assert latest(cron, utc(2024, 10, 27), second_pass) == utc(2024, 10, 27, 0, 45)
    first_pass = second_pass.replace(fold=0)  # 00:30 UTC
    assert cron.next_after(first_pass) == utc(2024, 10, 27, 0, 45)
    assert latest(cron, utc(2024, 10, 27), first_pass) == utc(2024, 10, 27, 0, 30)


def test_fire_time_on_the_transition_is_not_repeated() -> None:
    cron = parse_cron("30 2 * * *", BERLIN)
    assert cron.next_after(utc(2024, 3, 31, 0, 59)) == utc(2024, 3, 31, 1)
    assert cron.next_after(utc(2024, 3, 31, 1)) == utc(2024, 4, 1, 0, 30)
    assert latest(cron, utc(2024, 3, 29), utc(2024, 3, 31, 1)) == utc(2024, 3, 31, 1)
    assert latest(cron, utc(2024, 3, 29), utc(2024, 3, 31, 0, 59, 59)) == utc(2024, 3, 30, 1, 30)


def test_host_time_zone_does_not_leak_in(monkeypatch: pytest.MonkeyPatch) -> None:
    after = utc(2024, 3, 30)
    expected = parse_cron("30 2 * * *", BERLIN).next_runs(after, 3)
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        assert parse_cron("30 2 * * *", BERLIN).next_runs(after, 3) == expected
        assert parse_cron("30 2 * * *").next_runs(after, 2) == [
            utc(2024, 3, 30, 2, 30),
            utc(2024, 3, 31, 2, 30),
        ]
    finally:
        monkeypatch.undo()
        time.tzset()


# --------------------------------------------------------------------------- API behaviour


def test_results_are_utc_strictly_after_and_inputs_may_be_any_zone() -> None:
    cron = parse_cron("0 * * * *")
    fire = utc(2024, 5, 1, 10)
    assert cron.next_after(fire) == utc(2024, 5, 1, 11)
    assert cron.next_after(fire - timedelta(microseconds=1)) == fire
    assert cron.next_after(fire.astimezone(ZoneInfo("Asia/Kolkata"))) == utc(2024, 5, 1, 11)
    assert cron.next_after(fire).tzinfo is UTC
    assert latest(cron, fire - timedelta(hours=2), fire) == fire
    assert latest(cron, fire - timedelta(hours=2), fire - timedelta(microseconds=1)) == utc(2024, 5, 1, 9)
    assert cron.between(fire, fire) == []
    assert cron.between(fire, fire - timedelta(hours=5)) == []
    assert cron.next_runs(fire, 0) == []


def test_naive_datetimes_are_refused() -> None:
    cron = parse_cron("@hourly")
    for call in (
        lambda: cron.next_after(datetime(2024, 1, 1)),
        lambda: cron.between(datetime(2024, 1, 1), utc(2024, 1, 2)),
        lambda: cron.between(utc(2024, 1, 1), datetime(2024, 1, 2)),
    ):
        with pytest.raises(ValueError, match="time-zone-aware"):
            call()


def test_result_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    cron = parse_cron("* * * * *")
    with pytest.raises(ValueError, match="count"):
        cron.next_runs(utc(2024, 1, 1), cron_module.MAX_RESULTS + 1)
    with pytest.raises(ValueError, match="count"):
        cron.next_runs(utc(2024, 1, 1), -1)
    monkeypatch.setattr(cron_module, "MAX_RESULTS", 10)
    assert len(cron.between(utc(2024, 1, 1), utc(2024, 1, 1, 0, 10))) == 10
    with pytest.raises(ValueError, match="more than 10"):
        cron.between(utc(2024, 1, 1), utc(2024, 1, 1, 0, 11))


def test_the_calendar_start_is_handled() -> None:
    start = datetime(1, 1, 1, tzinfo=UTC)
    assert latest(parse_cron("0 12 * * *"), start, datetime(1, 1, 1, 6, tzinfo=UTC)) is None
    assert latest(parse_cron("0 12 * * *"), start, datetime(1, 1, 1, 13, tzinfo=UTC)) == datetime(
        1, 1, 1, 12, tzinfo=UTC
    )


def test_seconds_field_only_when_asked() -> None:
    cron = parse_cron("*/20 * * * * *", seconds=True)
    assert cron.between(utc(2024, 1, 1), utc(2024, 1, 1, 0, 1)) == [
        utc(2024, 1, 1, 0, 0, 20),
        utc(2024, 1, 1, 0, 0, 40),
        utc(2024, 1, 1, 0, 1),
    ]
    assert parse_cron("0 * * * *", seconds=True).next_after(utc(2024, 1, 1)) == utc(2024, 1, 1, 1)
    with pytest.raises(ScheduleError, match="seconds"):
        parse_cron("*/20 * * * * *")


def test_cron_is_a_value() -> None:
    cron = parse_cron("0 6 * * 1-5", BERLIN)
    assert cron == Cron("0 6 * * 1-5", BERLIN)
    assert {cron: 1}[parse_cron("0 6 * * 1-5", BERLIN)] == 1
    assert cron != parse_cron("0 6 * * 1-5")
    assert (cron.expression, cron.timezone) == ("0 6 * * 1-5", BERLIN)
    with pytest.raises(FrozenInstanceError):
        cron.expression = "@daily"  # type: ignore[misc]
    with pytest.raises(ScheduleError):
        Cron("61 * * * *")


def test_concurrent_iterators_do_not_share_state() -> None:
    cron = parse_cron("*/10 * * * *")
    first, second = cron.iter_after(utc(2024, 1, 1)), cron.iter_after(utc(2024, 6, 1))
    pairs = [(next(first), next(second)) for _ in range(3)]
    assert pairs == [(utc(2024, 1, 1, 0, m), utc(2024, 6, 1, 0, m)) for m in (10, 20, 30)]
    errors: list[BaseException] = []

    def worker(day: int) -> None:
        try:
            for _ in range(200):
                assert cron.next_after(utc(2024, 2, day, 5, 1)) == utc(2024, 2, day, 5, 10)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(d,)) for d in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --------------------------------------------------------------------------- errors

ERRORS = [
    ("0 0 * *", "UTC", ["expected 5 fields", "minute hour day-of-month month day-of-week", "got 4"]),
    ("", "UTC", ["expected 5 fields", "got 0"]),
    ("0 0 * * * *", "UTC", ["got 6", "seconds field is not supported"]),
    ("*/10 * * * * *", "UTC", ["got 6", "seconds field is not supported"]),
    ("0 0 1 1 * 2025 x", "UTC", ["got 7", "year"]),
    ("60 * * * *", "UTC", ["minute value 60 is out of range (0-59)"]),
    ("0 24 * * *", "UTC", ["hour value 24 is out of range (0-23)"]),
    ("0 0 * * 8", "UTC", ["day-of-week value 8 is out of range", "0 and 7 are both Sunday"]),
    ("0 0 32 * *", "UTC", ["day-of-month value 32 is out of range (1-31)"]),
    ("0 0 0 * *", "UTC", ["day-of-month value 0 is out of range (1-31)"]),
    ("0 0 * 13 *", "UTC", ["month value 13 is out of range (1-12 or JAN-DEC)"]),
    ("0 0 * * FRU", "UTC", ["unknown day-of-week name 'FRU'", "SUN-SAT"]),
    ("0 0 * JANUARY *", "UTC", ["unknown month name 'JANUARY'", "JAN-DEC"]),
    ("0 MON * * *", "UTC", ["hour field", "'MON' is not a number"]),
    ("@reboot", "UTC", ["@reboot is not supported", "@daily"]),
    ("@fortnightly", "UTC", ["unknown macro @fortnightly", "@weekly"]),
    ("0 0 * * *", "Mars/Olympus_Mons", ['unknown time zone "Mars/Olympus_Mons"', "IANA"]),
    ("0 0 * * *", "", ['unknown time zone ""']),
    ("0 0 * * *", "../etc/passwd", ["unknown time zone"]),
    ("0 0 L * *", "UTC", ["'L'", "extension"]),
    ("0 0 * * 5L", "UTC", ["'L'", "extension"]),
    ("0 0 15W * *", "UTC", ["'W'", "extension"]),
    ("0 0 * * 5#2", "UTC", ["'#'", "extension"]),
    ("0 0 ? * MON", "UTC", ["'?'", "extension"]),
    ("H * * * *", "UTC", ["'H'", "extension"]),
    ("*/0 * * * *", "UTC", ["minute step '0'", "from 1 to 60"]),
    ("*/90 * * * *", "UTC", ["minute step '90'", "from 1 to 60"]),
    ("30-10 * * * *", "UTC", ["minute range '30-10' runs backwards", "30-59,0-10"]),
    ("0 0 * * 5-1", "UTC", ["day-of-week range '5-1' runs backwards"]),
    ("1,,2 * * * *", "UTC", ["empty list item"]),
    ("*-5 * * * *", "UTC", ["'*' cannot start a range"]),
    ("1-2-3 * * * *", "UTC", ["cannot read '1-2-3' in the minute field"]),
    ("0 0 30 2 *", "UTC", ["never fire", "month 2 has no day 30"]),
    ("0 0 30,31 FEB *", "UTC", ["never fire", "month 2 has no day 30,31"]),
    ("0 0 31 4,6,9,11 *", "UTC", ["never fire", "month 4,6,9,11 has no day 31"]),
]


@pytest.mark.parametrize(("expression", "zone", "fragments"), ERRORS)
def test_error_messages(expression: str, zone: str, fragments: list[str]) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_cron(expression, zone)
    message = str(caught.value)
    assert f'Invalid schedule "{expression}"' in message
    for fragment in fragments:
        assert fragment in message
    assert caught.value.status == 422


@pytest.mark.parametrize(
    "name", ["localtime", "Factory", "posixrules", "right/UTC", "posix/Europe/Berlin", "LocalTime"]
)
def test_a_zone_that_is_not_a_place_is_refused_for_new_configuration_only(name: str) -> None:
    from jobs.site.zones import zone

    with pytest.raises(
        ValueError, match=f'time zone "{name}" is not a place\'s zone, and hosts may read it differently'
    ):
        zone(name, strict=True)
    if name != "LocalTime":  # a schedule stored before the rule still compiles, as it did
        parse_cron("0 0 * * *", name)


@pytest.mark.parametrize(
    ("written", "instead"), [("@annually", "@yearly"), ("@midnight", "@daily"), ("@MIDNIGHT", "@daily")]
)
def test_crontabs_names_that_netlify_refuses_are_refused_with_the_one_to_write(written: str, instead: str) -> None:
    """Netlify validates with cron-parser, whose table has neither: the same netlify.toml must deploy there."""
    with pytest.raises(ScheduleError) as refused:
        parse_cron(written, "UTC")
    assert f"{written} is not in Netlify's cron dialect" in refused.value.message
    assert refused.value.message.endswith(f"write {instead}")
