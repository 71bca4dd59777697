"""Configured values: finding a function's inline ``config`` literal, and checking each value.

The site loader runs the checks on every table where a value is written (TOML tables and inline
config), so a problem points at the place to edit, and the merged result is known to be usable.
Each check returns the value Backburner uses, or raises ValueError saying what is wrong and the fix.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ScheduleError
from .durations import parse_duration
from .routes import compile_pattern

BACKBURNER_KEYS = (
    "time_limit",
    "retries",
    "timezone",
    "overlap",
    "catchup",
    "catchup_window",
    "concurrency",
    "on_success",
    "on_failure",
    "artifacts",
    "retention",
)
#: Netlify's own ``[functions]`` properties (netlify/build FUNCTION_CONFIG_PROPERTIES, plus background, and
#: path: Netlify reads a function's path from its inline config only; Backburner also from the table).
NETLIFY_KEYS = frozenset(
    {
        "directory",
        "node_bundler",
        "external_node_modules",
        "ignored_node_modules",
        "included_files",
        "deno_import_map",
        "schedule",
        "memory",
        "region",
        "vcpu",
        "background",
        "path",
    }
)
INLINE_KEYS = ("schedule", "background", "path", *BACKBURNER_KEYS)
OVERLAP_CHOICES = ("skip", "queue", "allow")
CATCHUP_CHOICES = ("latest", "none", "all")
CRON_MACROS = ("@yearly", "@monthly", "@weekly", "@daily", "@hourly")


def _positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if not 0 < seconds < math.inf:
        raise ValueError(f"{value!r} must be more than 0, e.g. '90s' or '15m'")
    return seconds


def _retries(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{value!r} must be a list of delays like ['1m', '5m'] ([] means no retries)")
    return tuple(parse_duration(item) for item in value)


def _timezone(value: Any) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name like 'Europe/Paris' or 'UTC'") from None
    return str(value)


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"{value!r} is not allowed; use one of {', '.join(map(repr, choices))}")
        return str(value)

    return check


def _concurrency(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{value!r} must be a whole number of 1 or more")
    return value


def _urls(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"{value!r} must be a webhook URL or a list of them")
    for item in items:
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{item!r} is not an http(s) URL, e.g. 'https://example.com/hooks/done'")
    return tuple(dict.fromkeys(items))


def _text(example: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{value!r} must be a non-empty string, e.g. {example!r}")
        return value

    return check


def _paths(value: Any) -> tuple[str, ...]:
    """A function's own routes: one path or a list of them, in Netlify's redirect syntax."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(item, str) for item in items):
        raise ValueError(f"{value!r} must be a path like '/api/report' or a list of them, e.g. ['/r/:id', '/r/*']")
    for item in items:
        compile_pattern(item, strict=True)
    return tuple(dict.fromkeys(items))


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} must be true or false")
    return value


PARSERS: dict[str, Callable[[Any], Any]] = {
    "schedule": _text("0 3 * * *"),
    "background": _boolean,
    "path": _paths,
    "time_limit": _positive_duration,
    "retries": _retries,
    "timezone": _timezone,
    "overlap": _choice(*OVERLAP_CHOICES),
    "catchup": _choice(*CATCHUP_CHOICES),
    "catchup_window": parse_duration,
    "concurrency": _concurrency,
    "on_success": _urls,
    "on_failure": _urls,
    "artifacts": _text("s3://bucket/prefix"),
    "retention": _positive_duration,
}


def cron_error(expression: str) -> str | None:
    """Why a cron expression is unusable (quoting it), or None.

    jobs.site.cron does the real check; without it, only the shape is checked so the site still loads.
    """
    try:
        from .cron import parse_cron
    except ImportError:
        return _cron_shape_error(expression)
    try:
        parse_cron(expression, "UTC")
    except (ScheduleError, ValueError) as error:
        return str(getattr(error, "message", error))
    return None


def _cron_shape_error(expression: str) -> str | None:
    if expression.startswith("@"):
        why = None if expression in CRON_MACROS else f"use one of {', '.join(CRON_MACROS)}"
    else:
        fields = len(expression.split())
        why = None if fields == 5 else f"it has {fields} fields; write 5 (minute hour day month weekday)"
    return f'Invalid schedule "{expression}": {why}' if why else None


def value_error(key: str, value: Any, who: str) -> str | None:
    """The problem with one configured value, or None if Backburner can use it."""
    parser = PARSERS.get(key)
    if parser is None:
        return None
    try:
        parser(value)
    except ValueError as error:
        return str(error)
    why = cron_error(value) if key == "schedule" else None
    return f"{why} (schedule of {who})" if why else None


def misplaced_hint(key: str, pattern: str) -> str | None:
    """A hint when a key sits in the other half of netlify.toml (Netlify's vs Backburner's)."""
    if key in BACKBURNER_KEYS:
        return (
            f"'{key}' is a Backburner key: put it under [backburner.functions.\"{pattern}\"] "
            "(or [backburner] for all functions) so Netlify does not see it"
        )
    if key in NETLIFY_KEYS:
        return f"'{key}' is a Netlify key: put it under [functions.\"{pattern}\"]"
    return None


def config_node(tree: ast.Module) -> ast.expr | None:
    """The value of the last module-level ``config = ...`` (or ``config: dict = ...``)."""
    found: ast.expr | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "config":
            found = value
    return found


def key_lines(node: ast.expr) -> dict[Any, int]:
    """The line of each constant key of a dict display, for pointing at one inline value."""
    if not isinstance(node, ast.Dict):
        return {}
    return {key.value: key.lineno for key in node.keys if isinstance(key, ast.Constant)}
