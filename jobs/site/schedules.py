"""``[[backburner.schedules]]``: more schedules per function, each with its own payload (DESIGN.md section 9).

    [[backburner.schedules]]
      name = "report-eu"              # unique among schedules; a function's own schedule is named after it
      function = "report-background"
      cron = "0 6 * * 1-5"
      timezone = "Europe/Berlin"      # default UTC
      payload = { region = "eu" }     # merged into the body: {"next_run": ISO, "region": "eu"}

The checks of each value are shared with schedules created through the API (``jobs.schedules``), so a
schedule is valid by the same rules wherever it is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .model import NAME_PATTERN, Function, ScheduleSpec
from .toml import _HEADER, _KEY, _dotted_path
from .values import PARSERS, cron_error

KEYS = ("name", "function", "cron", "timezone", "payload")
_TABLE = ("backburner", "schedules")
_TRAILING_SPACE = re.compile(r"\s+$")

Report = Callable[[int | None, str, str], None]


#: The longest schedule name (it is part of Redis keys and URLs).
MAX_NAME = 100


def check_name(value: Any) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value) or len(value) > MAX_NAME:
        raise ValueError(
            f"{str(value)[:120]!r} is not a valid schedule name: up to {MAX_NAME} letters, digits, '_' and '-', "
            "e.g. 'report-eu'"
        )
    return value


def check_cron(expression: Any, timezone: Any = "UTC") -> tuple[str, str]:
    """The expression and time zone, checked as a function's own ``schedule`` and ``timezone`` are."""
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError(f"{expression!r} must be a cron expression, e.g. '0 6 * * 1-5' or '@daily'")
    zone = PARSERS["timezone"](timezone)
    why = cron_error(expression)
    if why:
        raise ValueError(why)
    return expression, zone


def check_payload(value: Any) -> dict[str, Any]:
    """A JSON object to merge into the scheduled body; it cannot set ``next_run`` (the tick does)."""
    if not isinstance(value, Mapping):
        raise ValueError(f'{value!r} must be a table of values, e.g. {{ region = "eu" }}')
    if "next_run" in value:
        raise ValueError("cannot set 'next_run': each tick sets it to the following fire time")
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"must hold JSON values only (strings, numbers, booleans, arrays, tables): {error}") from None
    payload: dict[str, Any] = json.loads(text)
    return payload


def _entry_lines(config_file: Path | None) -> list[dict[str, int]]:
    """For each ``[[backburner.schedules]]`` header in order: its line (key "") and the lines of its keys."""
    if config_file is None:
        return []
    try:
        text = config_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    entries: list[dict[str, int]] = []
    current: dict[str, int] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            path = _dotted_path(header.group(1))
            current = {"": number} if path == _TABLE and header.group(1).startswith("[[") else None
            if current is not None:
                entries.append(current)
            continue
        key = _KEY.match(line) if current is not None else None
        if key and current is not None:
            name = (_dotted_path(f"{_TRAILING_SPACE.sub('', key.group(1))} = 0") or ("",))[0]
            current.setdefault(name, number)
    return entries


def declared(
    data: Mapping[str, Any], config_file: Path | None, functions: Mapping[str, Function], report: Report
) -> tuple[ScheduleSpec, ...]:
    """The valid ``[[backburner.schedules]]`` entries; each problem is reported with its line and key."""
    table = data.get("backburner")
    entries = table.get("schedules") if isinstance(table, dict) else None
    if entries is None:
        return ()
    if not isinstance(entries, list):
        report(None, "backburner.schedules", "must be an array of tables: write [[backburner.schedules]] entries")
        return ()
    lines = _entry_lines(config_file)
    taken = {name for name, function in functions.items() if function.schedule}
    specs: list[ScheduleSpec] = []
    for n, entry in enumerate(entries):
        where = lines[n] if n < len(lines) else {}
        shown = f"backburner.schedules[{n}]"

        def problem(key: str, message: str, where: dict[str, int] = where, shown: str = shown) -> None:
            report(where.get(key, where.get("")), f"{shown}.{key}" if key else shown, message)

        if not isinstance(entry, dict):
            problem("", "must be a table with name, function and cron")
            continue
        name = entry.get("name")
        if isinstance(name, str) and name in taken:
            owner = "function's own schedule" if name in functions else "schedule"
            problem("name", f"{name!r} is already the name of a {owner}; schedule names must be unique")
            name = None
        spec = _spec(entry, functions, problem)
        if isinstance(name, str):
            taken.add(name)
        if spec is not None and name is not None:
            specs.append(spec)
    return tuple(specs)


def _spec(
    entry: dict[str, Any], functions: Mapping[str, Function], problem: Callable[[str, str], None]
) -> ScheduleSpec | None:
    """The entry as a ScheduleSpec, or None after reporting every problem it has."""
    bad = 0

    def check(key: str, rule: Callable[[Any], Any], value: Any) -> Any:
        nonlocal bad
        try:
            return rule(value)
        except ValueError as error:
            problem(key, str(error))
            bad += 1
            return None

    for key in entry:
        if key not in KEYS:
            problem(key, f"unknown key '{key}'; a schedule has {', '.join(KEYS)}")
            bad += 1
    for key in ("name", "function", "cron"):
        if key not in entry:
            problem("", f"'{key}' is missing; a schedule needs name, function and cron")
            bad += 1
    name = check("name", check_name, entry["name"]) if "name" in entry else None
    payload = check("payload", check_payload, entry.get("payload", {}))
    zone = check("timezone", PARSERS["timezone"], entry.get("timezone", "UTC"))
    cron = check("cron", lambda value: check_cron(value)[0], entry["cron"]) if "cron" in entry else None
    function = entry.get("function")
    if "function" in entry and (not isinstance(function, str) or function not in functions):
        known = ", ".join(sorted(functions)) or "none"
        problem("function", f"no function {function!r} in the functions folder (it has: {known})")
        bad += 1
    if bad:
        return None
    return ScheduleSpec(name, function, cron, zone, payload, "file")  # type: ignore[arg-type]
