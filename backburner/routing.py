"""What ``backburner check`` says about routes: which rules it serves, which not and why, and own paths."""

from __future__ import annotations

from rich.markup import escape

from jobs.site import Site
from jobs.site.routes import Rule, function_in

from .options import console

ORDER = "first match wins; a forced rule comes before functions' own paths, others after them"
_STYLE = {"served": "green", "not served": "dim", "path": "green"}


def _line(label: str, where: str, width: int, text: str) -> str:
    style = "yellow" if label == "served" and text.endswith(": 404)") else _STYLE[label]
    return f"  [{style}]{label:<10}[/] {escape(where.ljust(width))}  {escape(text)}"


def _text(rule: Rule, site: Site) -> str:
    if rule.target is None:
        return f"{rule.describe()}: {rule.note}"
    name = function_in(rule.target)
    if name and ":" not in name and name not in site.functions:
        return f"{rule.describe()}  (no function {name!r} in this site: 404)"
    return rule.describe()


def print_routes(site: Site) -> None:
    """One line per rule in the order they are tried, then each function's own paths."""
    table = site.routes
    if table.empty and not table.notes:
        return
    owners: dict[str, list[str]] = {}
    for route in table.routes:
        owners.setdefault(route.function, []).append(route.pattern.source)
    width = max([len(rule.where) for rule in table.rules] + [len(name) for name in owners] + [0])
    console.print(f"routes ({ORDER}):")
    for rule in table.rules:
        console.print(_line("served" if rule.target else "not served", rule.where, width, _text(rule, site)))
    for name, paths in sorted(owners.items()):
        console.print(_line("path", name, width, ", ".join(paths)))
    for note in table.notes:
        console.print(f"[yellow]warning[/] {escape(note)}")
