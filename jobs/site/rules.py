"""Reading redirect rules as Netlify does (netlify/build ``packages/redirect-parser``).

Rules come from ``_redirects`` in the publish folder first, then ``[[redirects]]`` in netlify.toml; the
first match wins. A rule Netlify would skip (no ``from``, a bad status...) is kept with a note instead of
failing the site: Netlify only warns about them, so a site it deploys still loads here. Backburner serves
the rules that rewrite (status 200) onto ``/.netlify/functions/``; every other rule is listed with why not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .routes import FUNCTIONS_PREFIX, FunctionRoute, Rule, compile_pattern, function_in

if TYPE_CHECKING:
    from .model import Function

#: Reports a problem: (file, line, key, message).
Report = Callable[[Path, int | None, str | None, str], None]

REDIRECTS_FILE = "_redirects"
_STATUS = re.compile(r"\s*([+-]?\d+)")
#: Conditions only Netlify's edge can evaluate (Identity roles, geolocation, the visitor's language).
_EDGE_CONDITIONS = {"role": "Role", "country": "Country", "language": "Language"}


def _status(value: Any) -> int | None:
    """``Number.parseInt`` as Netlify applies it: ``"200!"`` is 200; raises ValueError for no number."""
    if value is None:
        return None
    found = _STATUS.match(str(value))
    if found is None:
        raise ValueError(f"status {value!r} is not a number")
    return int(found.group(1))


def _listed(value: Any) -> tuple[str, ...]:
    """A condition's values: a list, or a comma-separated string (``_redirects`` writes ``Cookie=a,b``)."""
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _why_not(status: int | None, to: str) -> str | None:
    """Why Backburner does not serve a rule that Netlify would apply, or None when it does."""
    if status is None:
        return "no status, so Netlify's default 301: a redirect, not a rewrite onto a function"
    if to.startswith(("http://", "https://")):
        return f"a proxy to another site (status {status})" if status == 200 else f"a redirect (status {status})"
    if status != 200:
        kind = "a redirect" if 300 <= status < 400 else "a custom response"
        return f"{kind} (status {status}); only status-200 rewrites onto functions are served"
    path = to.split("?", 1)[0]
    if not (path + "/").startswith(FUNCTIONS_PREFIX):
        if path.startswith("/.netlify/"):
            return f"a rewrite to {path}, which is not a function URL"
        return f"a rewrite to {path}, not onto {FUNCTIONS_PREFIX}: static files are not Backburner's job"
    if function_in(path) is None:
        return f"{path} names no function"
    return None


def make_rule(raw: Mapping[str, Any], number: int, file: str, line: int | None) -> Rule:
    """One rule from its fields (Netlify's names and their old aliases: origin, destination, params...)."""
    source = raw.get("from", raw.get("origin"))
    to = raw.get("to", raw.get("destination"))
    query = raw.get("query", raw.get("params", raw.get("parameters")))
    conditions = raw.get("conditions") or {}
    force = raw.get("force") is True

    def skipped(why: str, status: int | None = None) -> Rule:
        shown = source if isinstance(source, str) else "(no from)"
        note = f"{why}; Netlify skips this rule"
        return Rule(number, file, line, shown, to if isinstance(to, str) else None, status, force, None, note=note)

    try:
        status, bad_status = _status(raw.get("status")), None
    except ValueError as error:
        status, bad_status = None, str(error)
    if not isinstance(source, str) or not source:
        return skipped("it has no 'from'", status)
    if bad_status:
        return skipped(bad_status)
    if to is None and source.endswith("/*") and status is not None and 200 <= status < 300:
        to = source[:-2] + "/:splat"  # Netlify's forward rule: `/a/* 200` means `/a/* /a/:splat 200`
    if not isinstance(to, str) or not to:
        return skipped("it has no 'to'", status)
    if not isinstance(raw.get("headers", {}), dict):
        return skipped("'headers' must be a table", status)
    if source.startswith(("http://", "https://")):
        return _unmatched(number, file, line, source, to, status, force, "a domain-level rule (its 'from' is a URL)")
    if source.startswith("/.netlify"):
        return skipped("'from' must not start with /.netlify", status)
    if not source.startswith("/"):
        return _unmatched(number, file, line, source, to, status, force, "'from' does not start with '/'")
    if query is not None and not isinstance(query, dict):
        return _unmatched(number, file, line, source, to, status, force, "'query' must be a table")
    if not isinstance(conditions, dict):
        return _unmatched(number, file, line, source, to, status, force, "'conditions' must be a table")
    edge = sorted({_EDGE_CONDITIONS.get(str(key).lower(), str(key)) for key in conditions if key != "Cookie"})
    if edge:
        why = f"its conditions on {', '.join(edge)} are evaluated by Netlify's edge only, so it never matches here"
        return _unmatched(number, file, line, source, to, status, force, why)
    note = _why_not(status, to)
    return Rule(
        number,
        file,
        line,
        source,
        to,
        status,
        force,
        compile_pattern(source),
        query=None if query is None else tuple((str(key), str(value)) for key, value in query.items()),
        cookies=_listed(conditions["Cookie"]) if "Cookie" in conditions else (),
        target=None if note else to.split("?", 1)[0].split("#", 1)[0],
        note=note,
    )


def _unmatched(
    number: int, file: str, line: int | None, source: str, to: str, status: int | None, force: bool, why: str
) -> Rule:
    return Rule(number, file, line, source, to, status, force, None, note=why)


def toml_rules(value: Any, file: str, lines: list[int], fallback: int | None) -> tuple[list[Rule], str | None]:
    """``[[redirects]]`` entries (``lines``: each entry's header); a problem when it is not an array."""
    if value is None:
        return [], None
    if not isinstance(value, list):
        return [], "must be an array of tables: write [[redirects]] above each rule"
    rules = []
    for index, raw in enumerate(value, start=1):
        line = lines[index - 1] if index <= len(lines) else fallback
        if isinstance(raw, dict):
            rules.append(make_rule(raw, index, file, line))
        else:
            rules.append(Rule(index, file, line, str(raw), None, None, False, None, note="not a table"))
    return rules, None


def file_rules(path: Path, shown: str) -> list[Rule]:
    """The rules of a ``_redirects`` file: ``from [key=value ...] to [status[!]] [Key=value ...]`` per line."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")  # a byte-order mark is no rule
    except OSError:
        return []
    rules: list[Rule] = []
    for number, raw_line in enumerate(text.split("\n"), start=1):
        tokens = raw_line.split()
        comment = next((i for i, token in enumerate(tokens) if token.startswith("#")), len(tokens))
        tokens = tokens[:comment]
        if not tokens:
            continue
        rules.append(make_rule(_parse_line(tokens), len(rules) + 1, shown, number))
    return rules


def _parse_line(tokens: list[str]) -> dict[str, Any]:
    source, parts = tokens[0], tokens[1:]
    if not parts:
        return {"from": source}
    if _is_status(parts[0]):  # a forward rule: `/a/* 200`
        to, query, rest = None, [], parts
    else:
        at = next((i for i, part in enumerate(parts) if part.startswith(("/", "http://", "https://"))), None)
        if at is None:
            return {"from": source}
        to, query, rest = parts[at], parts[:at], parts[at + 1 :]
    fields: dict[str, Any] = {"from": source, "to": to, "query": _pairs(query)}
    if rest:
        status, conditions = rest[0], _pairs(rest[1:])
        fields["status"] = status  # make_rule reads it as Netlify does ("200!" is 200)
        fields["force"] = _is_status(status) and status.endswith("!")
        conditions.pop("Sign", None)  # a signing secret for proxies, not a condition
        fields["conditions"] = conditions
    if not fields["query"]:
        del fields["query"]
    return fields


def _is_status(token: str) -> bool:
    return _STATUS.match(token) is not None


def _pairs(tokens: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for token in tokens:
        key, _, value = token.partition("=")
        pairs[key] = value
    return pairs


def merge(file: list[Rule], toml: list[Rule]) -> list[Rule]:
    """``_redirects`` first, then netlify.toml; of identical rules Netlify keeps the last one."""
    seen: set[tuple[Any, ...]] = set()
    kept: list[Rule] = []
    for rule in reversed(file + toml):
        key = (rule.source, rule.to, rule.status, rule.force, rule.query, rule.cookies, rule.pattern is None)
        if key not in seen:
            seen.add(key)
            kept.append(rule)
    ordered = list(reversed(kept))
    return [rule if rule.number == n else replace(rule, number=n) for n, rule in enumerate(ordered, start=1)]


def function_routes(
    functions: Mapping[str, Function], where: Mapping[str, tuple[Path, int | None, str]], report: Report
) -> list[FunctionRoute]:
    """Each function's own paths; two functions claiming the same path, or a scheduled function with a path,
    is a problem at the second declaration."""
    claimed: dict[tuple[str, ...], FunctionRoute] = {}
    routes: list[FunctionRoute] = []
    for function in functions.values():
        if not function.routes:
            continue
        file, line, key = where.get(function.name, (function.path, None, "path"))
        if function.schedule:
            message = (
                f"scheduled function {function.name!r} must not have a path (Netlify refuses this too): "
                "remove the path or the schedule"
            )
            report(file, line, key, message)
            continue
        for source in function.routes:
            route = FunctionRoute(function.name, compile_pattern(source, strict=True))
            other = claimed.get(route.pattern.shape)
            if other is None:
                claimed[route.pattern.shape] = route
                routes.append(route)
            elif other.function != function.name:
                message = (
                    f"path {source!r} of {function.name!r} matches the same requests as {other.pattern.source!r} "
                    f"of {other.function!r}; a request can reach only one function, so change one of them"
                )
                report(file, line, key, message)
    return routes
