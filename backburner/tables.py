"""The CLI's listings as tables: fitted to a terminal, plain and complete anywhere else.

On a terminal, identity columns (ids, names, statuses: what people copy and grep for) are never cut. The
other columns wrap, and when even that does not fit the terminal, they are left out, the least useful
first, with a note saying which. Anywhere else (a pipe, a file, CI) the table is plain text: a header line
and one line per row, columns aligned with spaces, no colour, no borders, every value whole, whatever
``COLUMNS`` says. ``--json`` remains the format for programs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Column as RichColumn
from rich.table import Table

#: Separates the lines of a multi-line value (``next runs``) when a row must stay on one line.
PLAIN_JOIN = ", "


@dataclass(frozen=True)
class Column:
    """How one column behaves when space is short."""

    header: str
    #: Never truncated, wrapped or left out.
    identity: bool = False
    #: Optional columns are left out in decreasing ``drop`` order until the table fits.
    drop: int = 0
    #: A wrapping column is not made narrower than this (its values fold onto more lines instead).
    min_width: int = 8
    #: A rich style for a value (a status's colour), on terminals only.
    style: Callable[[str], str | None] | None = None


def _plain(value: str) -> str:
    return PLAIN_JOIN.join(value.splitlines())


def plain_lines(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[str]:
    """The table as aligned text lines: every value whole, one line per row."""
    cells = [[column.header for column in columns], *[[_plain(value) for value in row] for row in rows]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip() for line in cells]


def _width(column: Column, values: list[str]) -> int:
    """The narrowest this column may be on a terminal."""
    longest = max(len(line) for value in [column.header, *values] for line in (value.splitlines() or [""]))
    return longest if column.identity else min(longest, column.min_width)


def _overhead(console: Console, count: int) -> int:
    """Borders and padding of a table with ``count`` columns (what rich adds around the values)."""
    empty = Table(*[RichColumn("", width=1) for _ in range(count)], box=box.HEAVY_HEAD)
    return Measurement.get(console, console.options.update_width(10_000), empty).minimum - count


def fit(console: Console, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[int] | None:
    """Indexes of the columns that fit ``console.width`` (optional ones left out as needed); None if even
    the identity columns alone do not fit."""
    kept = list(range(len(columns)))
    mins = [_width(column, [row[i] for row in rows]) for i, column in enumerate(columns)]
    optional = sorted((i for i, c in enumerate(columns) if not c.identity), key=lambda i: (-columns[i].drop, -i))
    while sum(mins[i] for i in kept) + _overhead(console, len(kept)) > console.width:
        if not optional:
            return None
        kept.remove(optional.pop(0))
    return kept


def print_table(
    console: Console, columns: Sequence[Column], rows: Iterable[Sequence[str]], *, notes: Console | None = None
) -> None:
    """Print ``rows`` (plain text values; ``\\n`` separates lines within a value) under ``columns``.

    ``notes`` (default: ``console``) is where a terminal table says which columns it left out.
    """
    rows = [list(row) for row in rows]
    kept = fit(console, columns, rows) if console.is_terminal else None
    if kept is None:
        for line in plain_lines(columns, rows):
            console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
        return
    table = Table(box=box.HEAVY_HEAD)
    for i in kept:
        column = columns[i]
        if column.identity:
            table.add_column(column.header, no_wrap=True, min_width=_width(column, [row[i] for row in rows]))
        else:
            table.add_column(column.header, overflow="fold", min_width=_width(column, [row[i] for row in rows]))
    for row in rows:
        cells = []
        for i in kept:
            styler = columns[i].style
            style = styler(row[i]) if styler is not None else None
            cells.append(f"[{style}]{escape(row[i])}[/]" if style else escape(row[i]))
        table.add_row(*cells)
    console.print(table, soft_wrap=False)
    left_out = [columns[i].header for i in range(len(columns)) if i not in kept]
    if left_out:
        (notes or console).print(
            f"[dim]left out to fit {console.width} columns: {', '.join(left_out)} (see --json for everything)[/]"
        )
