"""The schedules in force, compiled: netlify.toml's at start-up (an invalid one refuses start-up) and on edits,
plus the ones created through the API (``jobs.schedules.registry``)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jobs.errors import ScheduleError
from jobs.site import Function, Site
from jobs.site.cron import Cron, parse_cron
from jobs.site.model import ScheduleSpec

log = logging.getLogger("backburner.scheduler")


@dataclass(frozen=True)
class Schedule:
    """One schedule, its function (whose overlap, catch-up and limits apply) and its compiled cron."""

    spec: ScheduleSpec
    function: Function
    cron: Cron

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def revision(self) -> str | None:
        """For a schedule created through the API, which creation of its name this is (the scheduler's writes
        for it land only while that one exists); None for netlify.toml's."""
        return self.spec.revision if self.spec.source == "api" else None

    @property
    def payload(self) -> Mapping[str, object]:
        return self.spec.payload

    def key(self) -> tuple[object, ...]:
        """What makes two compiled schedules the same (to notice edits)."""
        return (self.spec, self.function, self.cron.expression, self.cron.timezone)


def load_schedules(
    site: Site, test_schedules: Mapping[str, str] | None = None, api: Sequence[ScheduleSpec] = ()
) -> list[Schedule]:
    """netlify.toml's schedules, then ``api``'s (in name order; a name netlify.toml also uses is left out).

    ``test_schedules`` (the BACKBURNER_TEST_SCHEDULES switch, tests and benchmarks only) replaces the
    expression of the named schedules with one that may have a leading seconds field (naming a function
    without a schedule gives it one; a name nothing has yet is logged). Raises ScheduleError naming the
    schedule, the expression and what is wrong with it; an API schedule that no longer compiles or lost its
    function is logged and left out.
    """
    overrides = dict(test_schedules or {})
    specs = list(site.schedules)
    taken = {spec.name for spec in specs}
    for name, own in site.functions.items():
        if name in overrides and name not in taken:
            specs.append(ScheduleSpec(name, name, overrides[name], own.timezone))
            taken.add(name)
    shadowed = [spec.name for spec in api if spec.name in taken]
    if shadowed:
        log.warning("schedules created through the API are shadowed by netlify.toml: %s", ", ".join(shadowed))
    specs += [spec for spec in api if spec.name not in taken]
    unknown = sorted(set(overrides) - {spec.name for spec in specs})
    if unknown:  # not an error: a schedule created through the API later may have that name
        log.warning("BACKBURNER_TEST_SCHEDULES names schedules there are not (yet): %s", ", ".join(unknown))
    schedules = []
    for spec in specs:
        expression = overrides.get(spec.name, spec.cron)
        function = site.functions.get(spec.function)
        try:
            if function is None:
                raise ScheduleError(f"its function {spec.function!r} is not in the site any more")
            cron = parse_cron(expression, spec.timezone, seconds=spec.name in overrides)
        except ScheduleError as error:
            if spec.source == "api":
                log.error("schedule %r (created through the API) is left out: %s", spec.name, error.message)
                continue
            raise ScheduleError(f"schedule {spec.name!r}: {error.message}") from None
        assert function is not None
        if expression != spec.cron:
            spec = dataclasses.replace(spec, cron=expression)
            if spec.name == function.name:
                function = dataclasses.replace(function, schedule=expression)
        schedules.append(Schedule(spec, function, cron))
    return schedules
