"""Configured values: finding a function's inline ``config`` literal, and checking each value.

The site loader runs the checks on every table where a value is written (TOML tables and inline
config), so a problem points at the place to edit, and the merged result is known to be usable.
Each check returns the value Backburner uses, or raises ValueError saying what is wrong and the fix.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from ..errors import ScheduleError, clipped
from ..execution.secrets import hidden
from .durations import parse_duration
from .routes import compile_pattern
from .sizes import format_size, parse_size
from .zones import zone

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
    "memory_limit",
    "max_result",
    "environment",
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


#: The longest time limit, retry delay, catch-up window and retention Backburner can honour.
MAX_TIME_LIMIT_S = 24 * 3600.0
MAX_RETRY_DELAY_S = 7 * 86400.0
MAX_CATCHUP_WINDOW_S = 366 * 86400.0
MAX_RETENTION_S = 10 * 366 * 86400.0
#: Bounds of ``memory_limit`` and ``max_result``: below the first a Python process cannot run, and results
#: travel in run records and webhooks.
MIN_MEMORY_LIMIT = 32 << 20
MAX_MEMORY_LIMIT = 1 << 40
MAX_RESULT_LIMIT = 64 << 20
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


def _duration(most: float, shown: str) -> Callable[[Any], float]:
    """Finite, more than 0 and at most ``most`` seconds (``shown`` as people write it)."""

    def check(value: Any) -> float:
        seconds = parse_duration(value)
        if not 0 < seconds <= most:
            raise ValueError(f"{value!r} must be more than 0 and at most {shown}, e.g. '90s' or '15m'")
        return seconds

    return check


def _retries(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{value!r} must be a list of delays like ['1m', '5m'] ([] means no retries)")
    delay = _duration(MAX_RETRY_DELAY_S, "7d")
    return tuple(delay(item) for item in value)


def _size(least: int, most: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        size = parse_size(value)
        if not least <= size <= most:
            raise ValueError(f"{value!r} must be from {format_size(least)} to {format_size(most)}, e.g. '512MB'")
        return size

    return check


def _environment(value: Any) -> dict[str, str]:
    """Variables for the handler: names as in a shell, values as text (numbers and booleans written out)."""
    if not isinstance(value, dict):
        raise ValueError(f'{value!r} must be a table of variables, e.g. {{ REGION = "eu" }}')
    found: dict[str, str] = {}
    problems = []  # all of them at once: a fix per round trip through `check` is slow going
    for name, item in value.items():
        if not _VARIABLE.match(name):
            problems.append(f"{name!r} is not a variable name; use letters, digits and '_', e.g. 'API_URL'")
        elif hidden(name):
            problems.append(f"{name!r} is one of Backburner's own secrets, which handlers never see")
        elif isinstance(item, bool):
            found[name] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            found[name] = str(item)
        else:
            problems.append(f"{name} = {item!r} must be a string, a number or a boolean")
    if problems:
        raise ValueError("; ".join(problems))
    return found


def artifacts_location(value: Any) -> str:
    """An S3 URL with a valid bucket name, a ``file://`` URL or a folder: the stores that exist."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} must be a non-empty string, e.g. 's3://bucket/prefix'")
    if "://" not in value:
        return value
    parts = urlsplit(value)
    if parts.scheme == "file":
        return value
    if parts.scheme != "s3":
        raise ValueError(f"{value!r}: only s3://bucket/prefix, file:///path or a folder can store artifacts")
    bucket = parts.netloc
    if not _BUCKET.match(bucket) or ".." in bucket or _IP.match(bucket) or bucket.startswith("xn--"):
        raise ValueError(
            f"{bucket!r} is not a valid S3 bucket name: 3-63 lower-case letters, digits, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def _timezone(value: Any) -> str:
    zone(value, strict=True)
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
    if not isinstance(items, list):
        raise ValueError(f"{value!r} must be a webhook URL or a list of them")
    bad = [item for item in items if not isinstance(item, str) or not _http_url(item)]
    if bad:
        which = ", ".join(repr(item) for item in bad)
        what = "is not a webhook URL (an http(s) URL" if len(bad) == 1 else "are not webhook URLs (http(s) URLs"
        raise ValueError(f"{which} {what}, e.g. 'https://example.com/hooks/done')")
    return tuple(dict.fromkeys(items))


def _http_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


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
    "time_limit": _duration(MAX_TIME_LIMIT_S, "24h"),
    "retries": _retries,
    "timezone": _timezone,
    "overlap": _choice(*OVERLAP_CHOICES),
    "catchup": _choice(*CATCHUP_CHOICES),
    "catchup_window": _duration(MAX_CATCHUP_WINDOW_S, "366d"),
    "concurrency": _concurrency,
    "on_success": _urls,
    "on_failure": _urls,
    "artifacts": artifacts_location,
    "retention": _duration(MAX_RETENTION_S, "3660d"),
    "memory_limit": _size(MIN_MEMORY_LIMIT, MAX_MEMORY_LIMIT),
    "max_result": _size(1, MAX_RESULT_LIMIT),
    "environment": _environment,
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
    return f'Invalid schedule "{clipped(expression)}": {why}' if why else None


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


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'schedule'?)`` for a likely typo of one of ``known``, else nothing."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


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


def _binds_handler(node: ast.stmt) -> bool:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name == "handler"
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(name, ast.Name) and name.id == "handler" for t in targets for name in ast.walk(t))
    if isinstance(node, ast.Import | ast.ImportFrom):
        return any(a.name == "*" or (a.asname or a.name.split(".")[0]) == "handler" for a in node.names)
    return False


def defines_handler(tree: ast.Module) -> bool:
    """Whether the module binds ``handler`` at its top level: a def, an assignment or an import, also inside a
    module-level ``if``/``try``/``with`` (``if sys.version_info ...: def handler``)."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if _binds_handler(node):
            return True
        if isinstance(node, ast.If | ast.Try | ast.With):
            for name in ("body", "orelse", "finalbody"):
                pending.extend(getattr(node, name, []))
            for handler in getattr(node, "handlers", []):
                pending.extend(handler.body)
    return False


def handler_call_problem(tree: ast.Module) -> tuple[int, str] | None:
    """Where and why a top-level ``def handler`` cannot be called as ``handler(event, context)`` (None: it can,
    or it is not a plain def)."""
    found: ast.stmt | None = None
    for node in tree.body:  # the last binding is the one that counts
        if _binds_handler(node):
            found = node
    if not isinstance(found, ast.FunctionDef | ast.AsyncFunctionDef) or found.decorator_list:
        return None  # bound some other way, or wrapped: its signature is not what is called
    args = found.args
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    required = len(positional) - len(args.defaults)
    keyword_only = [a.arg for a, default in zip(args.kwonlyargs, args.kw_defaults, strict=True) if default is None]
    shown = f"handler({', '.join(positional)})"
    if len(positional) < 2 and args.vararg is None:
        return found.lineno, f"{shown} cannot take (event, context); define def handler(event, context): ..."
    if required > 2:
        return found.lineno, f"{shown} needs {required} arguments, but is called with (event, context)"
    if keyword_only:
        return (
            found.lineno,
            f"handler needs keyword argument(s) {', '.join(keyword_only)}, but is called with (event, context)",
        )
    return None


def key_lines(node: ast.expr) -> dict[Any, int]:
    """The line of each constant key of a dict display, for pointing at one inline value."""
    if not isinstance(node, ast.Dict):
        return {}
    return {key.value: key.lineno for key in node.keys if isinstance(key, ast.Constant)}
