"""What ``backburner check`` says about routes: which rules it serves, which not and why, and own paths."""

from __future__ import annotations

from collections.abc import Callable

from rich.markup import escape

from api import paths
from jobs.site import Site
from jobs.site.routes import Pattern, Rule, function_in

from .options import console

ORDER = "first match wins; a forced rule comes before functions' own paths, others after them"
_STYLE = {"served": "green", "not served": "dim", "path": "green"}


def _line(label: str, where: str, width: int, text: str) -> str:
    style = "yellow" if label == "served" and text.endswith(": 404)") else _STYLE[label]
    return f"  [{style}]{label:<10}[/] {escape(where.ljust(width))}  {escape(text)}"


def _print_notes(notes: list[str], width: int) -> None:
    for note in dict.fromkeys(notes):
        console.print(f"  {'':<10} {'':<{width}}  [yellow]{escape(note)}[/]")


def _text(rule: Rule, site: Site) -> str:
    if rule.target is None:
        return f"{rule.describe()}: {rule.note}"
    name = function_in(rule.target)
    if name and ":" not in name and name not in site.functions:
        return f"{rule.describe()}  (no function {name!r} in this site: 404)"
    return rule.describe()


def _never(matches: Callable[[str], object]) -> list[str]:
    """Which of Backburner's own endpoints answer before a pattern that covers their paths (a path below them that
    no endpoint answers still reaches it)."""
    notes = []
    if api := paths.covered(matches, paths.API):
        notes.append(f"Backburner's own endpoints at {', '.join(api)} answer before it")
    if dashboard := paths.covered(matches, paths.DASHBOARD):
        notes.append(f"the dashboard's pages at {', '.join(dashboard)} answer before it while on the API's port")
    return notes


def print_routes(site: Site) -> None:
    """One line per rule in the order they are tried, then each function's own paths."""
    table = site.routes
    if table.empty and not table.notes:
        return
    width = max([len(rule.where) for rule in table.rules] + [len(route.function) for route in table.routes] + [0])
    console.print(f"routes ({ORDER}):")
    patterns: dict[str, list[Pattern]] = {}
    for route in table.routes:
        patterns.setdefault(route.function, []).append(route.pattern)
    for rule in table.rules:
        console.print(_line("served" if rule.target else "not served", rule.where, width, _text(rule, site)))
        if rule.target and rule.pattern:
            _print_notes(_never(rule.pattern.match), width)
    for name, own in sorted(patterns.items()):
        console.print(_line("path", name, width, ", ".join(pattern.source for pattern in own)))
        _print_notes([note for pattern in own for note in _never(pattern.match)], width)
    for note in table.notes:
        console.print(f"[yellow]warning[/] {escape(note)}")
