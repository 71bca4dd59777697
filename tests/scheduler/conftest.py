"""A site with schedules, and helpers to build engines whose clock the test holds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobs.runtime import Runtime
from jobs.site.cron import parse_cron
from jobs.site.model import ScheduleSpec
from scheduler.engine import Engine
from scheduler.schedules import Schedule
from tests.support.sites import make_site

FUNCTIONS = {
    "tick": """
        def handler(event, context):
            return {"statusCode": 200, "body": "tick"}
    """,
    "report-background": """
        def handler(event, context):
            return {"body": event["body"], "headers": event["headers"], "trigger": context.trigger,
                    "scheduled_for": context.scheduled_for, "key": context.idempotency_key}
    """,
    "berlin": """
        def handler(event, context):
            return {"statusCode": 200}
    """,
    "plain": """
        def handler(event, context):
            return {"statusCode": 200}
    """,
}

TOML = """
[functions]
  directory = "netlify/functions"

[functions."tick"]
  schedule = "*/5 * * * *"

[functions."report-background"]
  schedule = "0 6 * * 1-5"

[functions."berlin"]
  schedule = "30 2 * * *"

[backburner.functions."berlin"]
  timezone = "Europe/Berlin"

[backburner.functions."tick"]
  overlap = "allow"
  catchup = "all"

[backburner.functions."report-background"]
  retries = ["1s"]
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return make_site(tmp_path / "site", FUNCTIONS, TOML)


def at(text: str) -> datetime:
    """An aware UTC instant from ``2026-03-02T06:00:00``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def make_engine(runtime: Runtime) -> Callable[..., Engine]:
    """``make_engine("tick", expression=..., overlap=..., grace_s=...)``: one schedule, any policy."""

    def make(
        name: str,
        expression: str | None = None,
        *,
        timezone: str | None = None,
        grace_s: float = 10.0,
        seconds: bool = False,
        engine_runtime: Runtime | None = None,
        **changes: Any,
    ) -> Engine:
        rt = engine_runtime or runtime
        function = rt.site.get(name)
        function = dataclasses.replace(
            function,
            schedule=expression or function.schedule,
            timezone=timezone or function.timezone,
            **changes,
        )
        cron = parse_cron(function.schedule or "", function.timezone, seconds=seconds)
        spec = ScheduleSpec(name, name, cron.expression, cron.timezone)
        return Engine(rt, [Schedule(spec, function, cron)], grace_s=grace_s)

    return make
