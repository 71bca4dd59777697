"""Cron schedules: Netlify's cron dialect, evaluated in any IANA time zone.

The dialect
    Five fields, as in crontab(5) and on Netlify: minute (0-59), hour (0-23), day of month (1-31),
    month (1-12 or JAN-DEC) and day of week (0-7 or SUN-SAT; 0 and 7 are both Sunday). Names may be
    written in any case.

    Each field is ``*``, a value, a range ``a-b``, a step ``*/n``, ``a-b/n`` or ``a/n`` (``a`` up to the
    field's maximum), or a comma-separated list of those. A range must run forwards, except that a
    day-of-week range may end on Sunday (``FRI-SUN``). A step cannot exceed the field's size, so
    ``*/90`` in the minute field is an error rather than a silent "every hour".
    Macros: ``@yearly`` = ``0 0 1 1 *``, ``@monthly`` = ``0 0 1 * *``, ``@weekly`` = ``0 0 * * 0``,
    ``@daily`` = ``0 0 * * *``, ``@hourly`` = ``0 * * * *``: Netlify's (cron-parser's) table. ``@annually`` and
    ``@midnight``, which crontab(5) has, are refused with the name to write instead: a deploy to Netlify
    refuses them. ``@reboot`` has no meaning for a scheduler and is rejected, as is any other ``@`` word.
    The non-standard extensions some libraries accept (``L``, ``W``, ``#``, ``?``, ``H``, a seconds
    or a year field) are rejected with a message saying so: Netlify's dialect does not have them.
    A schedule that can never fire (``0 0 30 2 *``) is rejected too.

    Day of month and day of week: when both are restricted, a day matches if EITHER matches
    (``0 0 1,15 * 5`` runs on the 1st, the 15th and every Friday); when one of them is
    unrestricted, only the other one counts. A field that covers its whole range (``*``, ``*/1``,
    ``1-31``, ``0-6``, ``SUN-SAT``) is unrestricted however it is spelt; ``*/2`` is restricted.

Time zones and daylight saving time
    Fire times are wall-clock times in the schedule's zone, and a run fires at the first instant the
    zone's clock shows its scheduled time or later. So:

    * a time that happens twice (the repeated hour when clocks go back) fires once, at its first
      occurrence;
    * a time that never happens (the hour skipped when clocks go forward) fires at the moment of the
      jump: ``30 2 * * *`` in Europe/Berlin fires at 03:00 CEST (01:00 UTC) on that day. Several
      skipped times, and a time right at the jump (``*/15`` at 03:00), collapse into that one run.

    No run is doubled and none is silently lost. Results are aware UTC datetimes, strictly increasing.

Implementation: each field is validated and expanded here (precise errors, no dialect drift), and
croniter (``day_or=True``) walks the canonical form over NAIVE local times, so croniter's own DST
handling never applies; the mapping to instants above is done with zoneinfo.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from itertools import islice
from types import MappingProxyType

from croniter import croniter

from ..errors import ScheduleError, clipped
from .zones import zone

MACROS: Mapping[str, str] = MappingProxyType(
    {
        "@yearly": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@hourly": "0 * * * *",
    }
)
#: crontab(5)'s other names, which Netlify refuses, and what to write instead.
_NOT_NETLIFYS = {"@annually": "@yearly", "@midnight": "@daily"}
MAX_RESULTS = 100_000
"""The most fire times one call returns; a larger request is a caller bug, not a catch-up."""

_MONTH_NAMES, _DAY_NAMES = "jan feb mar apr may jun jul aug sep oct nov dec", "sun mon tue wed thu fri sat"
_MONTHS = {name: n for n, name in enumerate(_MONTH_NAMES.split(), 1)}
_DAYS = {name: n for n, name in enumerate(_DAY_NAMES.split())}
_MONTH_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February may have a 29th


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int  # the largest value one may write (7 for day-of-week)
    top: int  # where `*` and `a/n` stop (6 for day-of-week: 7 is only an alias of Sunday)
    names: Mapping[str, int]

    def describe(self) -> str:
        if self.names is _DAYS:
            return "0-7 or SUN-SAT, where 0 and 7 are both Sunday"
        return f"{self.low}-{self.high}" + (" or JAN-DEC" if self.names else "")


_SECOND = _Field("second", 0, 59, 59, {})
_FIELDS = (
    _Field("minute", 0, 59, 59, {}),
    _Field("hour", 0, 23, 23, {}),
    _Field("day-of-month", 1, 31, 31, {}),
    _Field("month", 1, 12, 12, _MONTHS),
    _Field("day-of-week", 0, 7, 6, _DAYS),
)
_ITEM = re.compile(r"(\*|[0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?(?:/([0-9A-Za-z]+))?")
_EXTENSIONS = (
    (re.compile(r".*#.*"), "'#' (nth weekday)"),
    (re.compile(r".*\?.*"), "'?' (no specific value)"),
    (re.compile(r"(\d*L|L-?\d*|LW|\d+W)", re.I), "'L'/'W' (last day, nearest weekday)"),
    (re.compile(r"H.*", re.I), "'H' (hashed value)"),
)


class _Bad(Exception):
    """One reason a field is wrong; parse_cron wraps it with the expression."""


def _value(token: str, spec: _Field) -> int:
    if token.isdigit():
        number = int(token)
    elif token.lower() in spec.names:
        number = spec.names[token.lower()]
    elif spec.names:
        raise _Bad(f"unknown {spec.name} name {token!r}; use {spec.describe()}")
    else:
        raise _Bad(f"{spec.name} field: {token!r} is not a number ({spec.describe()})")
    if not spec.low <= number <= spec.high:
        raise _Bad(f"{spec.name} value {number} is out of range ({spec.describe()})")
    return number


def _expand_item(item: str, spec: _Field) -> range:
    for pattern, what in _EXTENSIONS:
        if pattern.fullmatch(item):
            raise _Bad(
                f"{spec.name} field {item!r} uses {what}, an extension outside the 5-field crontab dialect"
                " Netlify documents (its build's validator may accept it; its scheduler is not known to run it)"
            )
    match = _ITEM.fullmatch(item)
    if match is None:
        raise _Bad(
            f"cannot read {item!r} in the {spec.name} field; use {spec.describe()}, "
            "'*', ranges a-b, steps */n or a-b/n, and lists a,b"
        )
    start, end, step = match.groups()
    if start == "*" and end is not None:
        raise _Bad(f"{spec.name} field {item!r}: '*' cannot start a range")
    every, size = int(step) if step and step.isdigit() else 1, spec.top - spec.low + 1
    if step is not None and not (step.isdigit() and 1 <= every <= size):
        raise _Bad(f"{spec.name} step {step!r} in {item!r} must be a whole number from 1 to {size}")
    first = spec.low if start == "*" else _value(start, spec)
    last = spec.top if start == "*" or (end is None and step) else first
    if end is not None:
        last = _value(end, spec)
        if last < first and spec.names is _DAYS and last == 0:
            last = 7  # FRI-SUN
        if last < first:
            raise _Bad(
                f"{spec.name} range {item!r} runs backwards; write the low value first "
                f"or split it into a list ({first}-{spec.top},{spec.low}-{last})"
            )
    return range(first, last + 1, every)


def _expand(text: str, spec: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _Bad(f"{spec.name} field {text!r} has an empty list item")
        values.update(_expand_item(item, spec))
    return frozenset(0 if spec.names is _DAYS and v == 7 else v for v in values)


def _compile(expression: str, seconds: bool) -> str:
    """Validate ``expression`` and return the canonical form handed to croniter."""
    text = expression.strip()
    if text.startswith("@"):
        if text.lower() in _NOT_NETLIFYS:
            instead = _NOT_NETLIFYS[text.lower()]
            raise _Bad(f"{text} is not in Netlify's cron dialect (a deploy there refuses it); write {instead}")
        if text.lower() not in MACROS:
            why = f"{text} is not supported (a scheduler has no boot event)"
            why = why if text.lower() == "@reboot" else f"unknown macro {text}"
            raise _Bad(f"{why}; use 5 fields or one of {', '.join(MACROS)}")
        text = MACROS[text.lower()]
    parts = text.split()
    specs = ((_SECOND,) if seconds and len(parts) == 6 else ()) + _FIELDS
    if len(parts) != len(specs):
        extra = " (6 with a leading seconds field)" if seconds else ""
        hint = {6: "; a seconds field is not supported", 7: "; seconds and year fields are not supported"}
        raise _Bad(
            f"expected 5 fields{extra}: minute hour day-of-month month day-of-week, got "
            f"{len(parts)}{'' if seconds else hint.get(len(parts), '')}"
        )
    sets = [_expand(part, spec) for part, spec in zip(parts, specs, strict=True)]
    days, months, weekdays = sets[-3:]
    if len(weekdays) == 7 and not any(d <= _MONTH_DAYS[m] for m in months for d in days):
        listed = [",".join(map(str, sorted(values))) for values in (months, days)]
        raise _Bad(f"it can never fire: month {listed[0]} has no day {listed[1]}")
    # A full field becomes "*" so croniter's OR rule sees an unrestricted day; others, explicit lists.
    sizes = (spec.top - spec.low + 1 for spec in specs)
    return " ".join("*" if len(s) == n else ",".join(map(str, sorted(s))) for s, n in zip(sets, sizes, strict=True))


def _zone(name: str) -> tzinfo:
    try:
        return zone(name)
    except ValueError as bad:
        raise _Bad(str(bad)) from None


def _aware_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a time-zone-aware datetime is required, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Cron:
    """A validated schedule: fire times of ``expression`` in ``timezone``, as UTC instants.

    Build it with :func:`parse_cron` (or directly; both validate). Immutable, hashable, thread-safe.
    """

    expression: str
    timezone: str = "UTC"
    seconds: bool = field(default=False, kw_only=True)
    _tz: tzinfo = field(init=False, repr=False, compare=False)
    _walker: croniter = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            canonical = _compile(self.expression, self.seconds)
            zone = _zone(self.timezone)
        except _Bad as bad:
            where = "" if self.timezone == "UTC" else f" (time zone {self.timezone})"
            raise ScheduleError(f'Invalid schedule "{clipped(self.expression)}"{where}: {bad}') from None
        six = len(canonical.split()) == 6
        walker = croniter(canonical, datetime(2000, 1, 1), day_or=True, second_at_beginning=six)
        object.__setattr__(self, "_tz", zone)
        object.__setattr__(self, "_walker", walker)

    def _walk(self, wall: datetime) -> Iterator[datetime]:
        """Naive local fire times strictly after ``wall``; a private copy per call."""
        walker = copy.copy(self._walker)
        walker.set_current(wall, force=True)
        while True:
            yield walker.get_next(datetime)

    def _instant(self, wall: datetime) -> datetime:
        """The first instant the zone's clock reads ``wall`` or later (see the module docstring)."""
        utc = wall.replace(tzinfo=self._tz, fold=0).astimezone(UTC)  # fold=0: first of a repeated time
        if self._tz is UTC or utc.astimezone(self._tz).replace(tzinfo=None) == wall:
            return utc
        # ``wall`` falls in a gap: the clock jumped over it. Find the jump to the second.
        before = int(wall.replace(tzinfo=self._tz, fold=1).astimezone(UTC).timestamp())
        after, offset = int(utc.timestamp()), utc.astimezone(self._tz).utcoffset()
        while after - before > 1:
            middle = (before + after) // 2
            if datetime.fromtimestamp(middle, self._tz).utcoffset() == offset:
                after = middle
            else:
                before = middle
        return datetime.fromtimestamp(after, UTC)

    def iter_after(self, moment: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``moment``, ascending, without end."""
        last = _aware_utc(moment)
        for wall in self._walk(last.astimezone(self._tz).replace(tzinfo=None)):
            instant = self._instant(wall)
            if instant > last:  # skips the second pass of a repeated hour and merged gap times
                yield instant
                last = instant

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after ``moment`` (aware, any zone), as an aware UTC datetime."""
        return next(self.iter_after(moment))

    def next_runs(self, after: datetime, count: int) -> list[datetime]:
        """The next ``count`` fire times strictly after ``after``, in UTC, strictly increasing."""
        if not 0 <= count <= MAX_RESULTS:
            raise ValueError(f"count must be between 0 and {MAX_RESULTS}, got {count}")
        return list(islice(self.iter_after(after), count))

    def between(self, start: datetime, end: datetime) -> list[datetime]:
        """Fire times ``t`` with ``start < t <= end`` (UTC): the ticks a stopped scheduler missed.

        Raises ValueError rather than build more than MAX_RESULTS of them.
        """
        stop, found = _aware_utc(end), list[datetime]()
        for instant in self.iter_after(start):
            if instant > stop:
                break
            if len(found) == MAX_RESULTS:
                raise ValueError(f"more than {MAX_RESULTS} fire times between {start} and {end}")
            found.append(instant)
        return found


def parse_cron(expression: str, timezone: str = "UTC", *, seconds: bool = False) -> Cron:
    """Validate and compile a schedule; raise ScheduleError quoting it and saying exactly what is wrong.

    ``seconds=True`` accepts an optional leading seconds field (6 fields); only benchmarks use it.
    """
    return Cron(expression, timezone, seconds=seconds)
