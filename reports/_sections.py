"""What a report is made of: the records the template receives, already formatted for display."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import pandas as pd
from markupsafe import Markup


@dataclass(frozen=True, slots=True)
class Kpi:
    """One headline number, already formatted for display."""

    label: str
    value: str
    delta: str | None
    trend: Literal["up", "down", "flat"] | None
    tone: Literal["good", "bad", "neutral"]
    caption: str | None


@dataclass(slots=True)
class KpiRow:
    """Consecutive ``kpi()`` calls share one row of cards."""

    items: list[Kpi] = field(default_factory=list)
    kind: ClassVar[str] = "kpis"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    numeric: bool


@dataclass(frozen=True, slots=True)
class Table:
    """A table section: the formatted rows shown in HTML, and the whole frame for the exports."""

    title: str
    slug: str
    columns: list[Column]
    rows: list[list[str]]
    total_rows: int
    caption: str | None
    frame: pd.DataFrame = field(repr=False)
    files: list[str] = field(default_factory=list)
    kind: ClassVar[str] = "table"

    @property
    def truncated(self) -> bool:
        return len(self.rows) < self.total_rows


@dataclass(frozen=True, slots=True)
class ChartSection:
    title: str
    slug: str
    svg: Markup
    note: str | None
    caption: str | None
    kind: ClassVar[str] = "chart"


@dataclass(frozen=True, slots=True)
class Note:
    html: Markup
    title: str | None
    kind: ClassVar[str] = "note"


@dataclass(frozen=True, slots=True)
class PageBreak:
    kind: ClassVar[str] = "page_break"


Section = KpiRow | Table | ChartSection | Note | PageBreak
