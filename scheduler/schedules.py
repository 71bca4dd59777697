"""The site's schedules, compiled at start-up (an invalid one stops the scheduler with the reason) and on edits."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from jobs.errors import ConfigError, ScheduleError
from jobs.site import Function, Site
from jobs.site.cron import Cron, parse_cron


@dataclass(frozen=True)
class Schedule:
    """One scheduled function and its compiled cron (croniter semantics, in the function's time zone)."""

    function: Function
    cron: Cron

    @property
    def name(self) -> str:
        return self.function.name


def load_schedules(site: Site, test_schedules: Mapping[str, str] | None = None) -> list[Schedule]:
    """Every function with a schedule, in name order.

    ``test_schedules`` (the BACKBURNER_TEST_SCHEDULES switch, tests and benchmarks only) replaces the
    schedule of the named functions with an expression that may have a leading seconds field.
    Raises ScheduleError naming the function, the expression and what is wrong with it.
    """
    overrides = dict(test_schedules or {})
    unknown = sorted(set(overrides) - set(site.functions))
    if unknown:
        raise ConfigError(f"BACKBURNER_TEST_SCHEDULES names functions the site does not have: {', '.join(unknown)}")
    schedules = []
    for function in site.functions.values():
        expression = overrides.get(function.name, function.schedule)
        if not expression:
            continue
        try:
            cron = parse_cron(expression, function.timezone, seconds=function.name in overrides)
        except ScheduleError as error:
            raise ScheduleError(f"function {function.name!r}: {error.message}") from None
        if expression != function.schedule:
            function = dataclasses.replace(function, schedule=expression)
        schedules.append(Schedule(function, cron))
    return schedules
