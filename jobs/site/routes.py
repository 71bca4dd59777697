"""Routes onto functions: Netlify's rewrite rules and functions' own paths, compiled once per site load.

Which function a request reaches (the API asks only when none of Backburner's own endpoints answers,
so no route can shadow ``/.netlify/functions/``, ``/api/...``, ``/healthz`` or the dashboard):

1. the first matching rule, if it is forced (``force = true``, ``200!``);
2. else a function's own ``path`` (the most specific pattern first);
3. else the first matching rule.

That is Netlify's request chain with Backburner's endpoints as the platform's own paths and functions'
paths as the site's content: an unforced rule is a fallback, a forced one shadows. A matching rule that
Backburner does not serve (a redirect, a proxy, a static rewrite) ends the search as it would on
Netlify; the API answers 404 and says which rule it was.

Patterns use Netlify's redirect syntax: literal segments, ``:name`` for one segment and a final ``*``
for the rest (``:splat``; ``/a/*`` also matches ``/a``). A trailing slash never matters; case does.
A request meets only the rules and paths whose first segment fits its own (a dictionary look-up), then
a ``str.startswith`` each and one regular expression for those whose literal prefix fits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import unquote

FUNCTIONS_PREFIX = "/.netlify/functions/"
_NAME = re.compile(r"[A-Za-z0-9_]+")
_TOKEN = re.compile(r":([A-Za-z0-9_]+)")
_FUNCTION_TARGET = re.compile(r"/\.netlify/functions/([^/?#]*)")

Query = Sequence[tuple[str, str]]
T = TypeVar("T")


def normalize(path: str) -> str:
    """Netlify compares paths without their trailing slash (``/a/`` is ``/a``; ``/`` stays)."""
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


@dataclass(frozen=True)
class Pattern:
    """A compiled path pattern; ``shape`` tells two patterns that match the same paths apart from others."""

    source: str
    prefix: str
    regex: re.Pattern[str] | None
    names: tuple[str, ...]
    shape: tuple[str, ...]
    rank: tuple[int, ...]

    def match(self, path: str) -> dict[str, str] | None:
        """The placeholder values (``splat`` for ``*``) when ``path`` (normalised) matches, else None."""
        if not path.startswith(self.prefix):
            return None
        if self.regex is None:
            return {} if path == self.prefix else None
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        return {name: value or "" for name, value in zip(self.names, found.groups(), strict=True)}


def compile_pattern(source: str, *, strict: bool = False) -> Pattern:
    """Compile ``/literal/:name/*``. With ``strict`` (functions' own paths) anything Netlify's redirect
    syntax cannot say raises ValueError; rules keep Netlify's leniency (an odd segment is literal text).
    """
    if strict:
        _check_strict(source)
    path = normalize(unquote(source))
    segments = path.split("/")[1:]
    parts: list[str] = []
    names: list[str] = []
    shape: list[str] = []
    rank: list[int] = []
    prefix, literal = "", True
    for index, segment in enumerate(segments):
        if index == len(segments) - 1 and segment.endswith("*"):
            head = segment[:-1]
            parts.append("(?:/(.*))?" if not head else "/" + re.escape(head) + "(.*)")
            names.append("splat")
            shape.append(head + "*")
            rank.append(2)
            if literal and head:
                prefix += "/" + head
            literal = False
        elif segment.startswith(":") and _NAME.fullmatch(segment[1:]):
            parts.append("/([^/]+)")
            names.append(segment[1:])
            shape.append(":")
            rank.append(1)
            literal = False
        else:
            parts.append("/" + re.escape(segment))
            shape.append(segment)
            rank.append(0)
            if literal:
                prefix += "/" + segment
    regex = None if literal else re.compile("".join(parts))
    return Pattern(source, prefix if not literal else path, regex, tuple(names), tuple(shape), tuple(rank))


def _check_strict(source: str) -> None:
    example = "e.g. '/reports/:year/*'"
    if not source.startswith("/"):
        raise ValueError(f"{source!r} must start with '/', {example}")
    if "?" in source or "#" in source:
        raise ValueError(f"{source!r} must be a path without a query string or fragment, {example}")
    if "*" in normalize(source)[:-1]:
        raise ValueError(f"{source!r} may use '*' only as its last character (the rest of the path), {example}")
    for segment in source.split("/"):
        if segment.startswith(":") and not _NAME.fullmatch(segment[1:]):
            raise ValueError(f"{segment!r} in {source!r} is not a placeholder: write ':name' (letters, digits, _)")


def substitute(template: str, values: Mapping[str, str]) -> str:
    """``to`` with ``:splat`` and ``:name`` filled in; unknown tokens stay as written (as on Netlify)."""
    return _TOKEN.sub(lambda token: values.get(token.group(1), token.group(0)), template)


def function_in(target: str) -> str | None:
    """The function name a ``/.netlify/functions/NAME[/rest]`` path names, or None."""
    found = _FUNCTION_TARGET.match(target)
    return found.group(1) if found and found.group(1) else None


@dataclass(frozen=True)
class Rule:
    """One redirect rule (``[[redirects]]`` or a ``_redirects`` line) and whether Backburner serves it.

    ``pattern`` is None when the rule can never match here (Netlify skips it, or it needs Netlify's edge);
    ``target`` is the ``/.netlify/functions/...`` path it rewrites to when Backburner serves it; otherwise
    ``note`` says why not.
    """

    number: int
    file: str
    line: int | None
    source: str
    to: str | None
    status: int | None
    force: bool
    pattern: Pattern | None
    query: tuple[tuple[str, str], ...] | None = None
    cookies: tuple[str, ...] = ()
    target: str | None = None
    note: str | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def describe(self) -> str:
        """``/from -> /to status`` as people write it, for listings and 404 messages."""
        status = "" if self.status is None else f" {self.status}{'!' if self.force else ''}"
        return f"{self.source} -> {self.to or '(no to)'}{status}"

    def match(self, path: str, query: Query, cookies: Mapping[str, str]) -> dict[str, str] | None:
        if self.pattern is None:
            return None
        values = self.pattern.match(path)
        if values is None:
            return None
        if self.cookies and not any(name in cookies for name in self.cookies):
            return None
        if self.query is not None:
            given = dict(reversed(query))  # the first value of each parameter
            if set(given) != {name for name, _ in self.query}:  # Netlify matches the exact set of parameters
                return None
            for name, wanted in self.query:
                if wanted.startswith(":") and _NAME.fullmatch(wanted[1:]):
                    values[wanted[1:]] = given[name]
                elif given[name] != wanted:
                    return None
        return values


@dataclass(frozen=True)
class FunctionRoute:
    """A function's own ``path`` pattern."""

    function: str
    pattern: Pattern


@dataclass(frozen=True)
class RouteMatch:
    """Where a request goes: ``function`` to run, or ``message`` saying why nothing runs."""

    function: str | None
    rule: Rule | None = None
    route: FunctionRoute | None = None
    message: str | None = None

    @property
    def via(self) -> str:
        """What matched, in words (built only when asked: matching is on the request path)."""
        if self.rule is not None:
            return f"rule {self.rule.number} ({self.rule.where}: {self.rule.describe()})"
        if self.route is not None:
            return f"path {self.route.pattern.source!r} of {self.route.function}"
        return "nothing"


class _Index(Generic[T]):
    """Candidates by a path's first segment, in their original order: the items whose pattern starts
    with that literal segment, merged with those that start with ``:name`` or ``*`` (they fit any)."""

    def __init__(self, items: Sequence[T], pattern: Callable[[T], Pattern | None]) -> None:
        by_segment: dict[str, list[int]] = {}
        anywhere: list[int] = []
        for index, item in enumerate(items):
            found = pattern(item)
            if found is None:
                continue
            if found.rank[0] == 0:
                by_segment.setdefault(found.shape[0], []).append(index)
            else:
                anywhere.append(index)
        self._by_segment = {
            segment: tuple(items[i] for i in sorted(indices + anywhere)) for segment, indices in by_segment.items()
        }
        self._anywhere = tuple(items[i] for i in anywhere)

    def __call__(self, path: str) -> tuple[T, ...]:
        return self._by_segment.get(path.split("/", 2)[1], self._anywhere)


@dataclass(frozen=True)
class RouteTable:
    """The site's rules (in Netlify's order) and functions' routes (most specific first)."""

    rules: tuple[Rule, ...] = ()
    routes: tuple[FunctionRoute, ...] = ()
    #: Things Netlify would only warn about (``redirects`` that is not an array of tables...).
    notes: tuple[str, ...] = ()
    _rules: _Index[Rule] = field(init=False, repr=False, compare=False)
    _routes: _Index[FunctionRoute] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A request only meets the rules and paths that can match its first segment: with hundreds of
        # rules, matching costs a few of them, not all.
        object.__setattr__(self, "_rules", _Index(self.rules, lambda rule: rule.pattern))
        object.__setattr__(self, "_routes", _Index(self.routes, lambda route: route.pattern))

    @classmethod
    def build(cls, rules: Iterable[Rule], routes: Iterable[FunctionRoute], notes: Iterable[str] = ()) -> RouteTable:
        ordered = sorted(routes, key=lambda route: route.pattern.rank)  # stable: ties keep declaration order
        return cls(tuple(rules), tuple(ordered), tuple(notes))

    @property
    def empty(self) -> bool:
        return not self.rules and not self.routes

    def match(self, path: str, query: Query = (), cookies: Mapping[str, str] | None = None) -> RouteMatch:
        """Route a request path (percent-decoded, as ASGI gives it) with its query pairs and cookies."""
        path, cookies = normalize(path), cookies or {}
        rule, values = self._first_rule(path, query, cookies)
        if rule is not None and rule.force:
            return self._through(rule, values, path)
        for route in self._routes(path):
            if route.pattern.match(path) is not None:
                return RouteMatch(route.function, route=route)
        if rule is not None:
            return self._through(rule, values, path)
        return RouteMatch(None, message=f"Nothing is served at {path}: no function and no rewrite onto one matches it.")

    def _first_rule(self, path: str, query: Query, cookies: Mapping[str, str]) -> tuple[Rule | None, dict[str, str]]:
        for rule in self._rules(path):
            values = rule.match(path, query, cookies)
            if values is not None:
                return rule, values
        return None, {}

    @staticmethod
    def _through(rule: Rule, values: dict[str, str], path: str) -> RouteMatch:
        name = None if rule.target is None else function_in(substitute(rule.target, values))
        if name is not None:
            return RouteMatch(name, rule=rule)
        why = "names no function for this path" if rule.target else f"Backburner does not serve: {rule.note}"
        return RouteMatch(None, rule=rule, message=f"{path} matches {RouteMatch(None, rule=rule).via}, which {why}.")
