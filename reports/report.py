"""The author-facing builder: collect KPIs, tables, charts and notes, then render every format at once.

Declaring a section does the checking and the small work (formatting the rows shown, drawing the
chart) right away, so mistakes fail at the author's line. Frames are never deep-copied: tables keep a
copy-on-write view, and the exports are written straight from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Self

import pandas as pd
from markupsafe import Markup

from reports import _export, _templating
from reports._markup import render_note
from reports._sections import ChartSection, Column, Kpi, KpiRow, Note, PageBreak, Section, Table
from reports.errors import ReportError
from reports.formatting import (
    CellFormat,
    Period,
    format_cell,
    format_number,
    format_percent,
    format_period,
    is_missing,
    plain_integer_column,
    slugify,
    unique_name,
)

if TYPE_CHECKING:
    from reports.charts import ChartKind

Format = Literal["html", "csv", "parquet", "xlsx"]
FORMATS: tuple[Format, ...] = ("html", "csv", "parquet", "xlsx")
DEFAULT_FORMATS: tuple[Format, ...] = ("html", "csv", "parquet")
"""XLSX is opt-in: openpyxl writes it cell by cell (~10k rows/s without lxml), so a big table costs minutes."""
Writer = Callable[[str, bytes, str], object]
"""Where rendered files go: ``writer(name, data, content_type)``, e.g. ``context.artifacts.write``."""


class Report:
    """A report built from DataFrames and rendered to one self-contained HTML page plus data files.

    Args:
        title: the page title and heading.
        period: what the figures cover: a label or day, or a (start, end) pair.
        subtitle: one line under the title.
        template_dirs: site folders searched before the built-in templates, so a site's own
            ``report.html.j2`` (or ``base.css``) wins.
        generated_at: shown in the header; defaults to now (UTC). Pass it for reproducible output.
        extra: anything more a custom template needs, available there as ``extra``.
    """

    def __init__(
        self,
        title: str,
        period: Period | None = None,
        *,
        subtitle: str | None = None,
        template_dirs: _templating.TemplateDirs = None,
        generated_at: datetime | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.title = title
        self.period = format_period(period)
        self.subtitle = subtitle
        self.generated_at = generated_at or datetime.now(UTC)
        self.extra = dict(extra or {})
        self._dirs = _templating.template_dirs(template_dirs)
        self._sections: list[Section] = []
        self._ids: set[str] = set()  # table slugs name files; charts use ids prefixed chart-

    def __repr__(self) -> str:
        return f"<Report {self.title!r} with {len(self._sections)} sections>"

    @property
    def sections(self) -> tuple[Section, ...]:
        return tuple(self._sections)

    @property
    def tables(self) -> list[Table]:
        return [s for s in self._sections if isinstance(s, Table)]

    def kpi(
        self,
        label: str,
        value: object,
        *,
        unit: str | None = None,
        delta: float | None = None,
        decimals: int | None = None,
        percent: bool = False,
        compact: bool = False,
        higher_is_better: bool = True,
        caption: str | None = None,
    ) -> Self:
        """Add a headline number; ``delta`` is a fraction (0.042 shows as +4.2%).

        ``percent=True`` shows a fraction ``value`` as a percentage (0.021 -> 2.1%); ``compact=True``
        shortens big numbers (60,029,126 -> 60.0M) so they fit the card.
        ``higher_is_better=False`` colours a rise red, for costs, latencies and error counts.
        """
        trend: Literal["up", "down", "flat"] | None = None
        tone: Literal["good", "bad", "neutral"] = "neutral"
        delta_text = None
        if delta is not None and not is_missing(delta):
            trend = "flat" if abs(delta) < 0.0005 else "up" if delta > 0 else "down"
            delta_text = format_percent(delta, signed=True)
            if trend == "flat":
                delta_text = delta_text.lstrip("+-")
            else:
                tone = "good" if (trend == "up") == higher_is_better else "bad"
        if percent:
            shown = format_percent(value, decimals=1 if decimals is None else decimals)
        else:
            shown = format_number(value, decimals=decimals, unit=unit, compact=compact)
        item = Kpi(label, shown, delta_text, trend, tone, caption)
        if self._sections and isinstance(self._sections[-1], KpiRow):
            self._sections[-1].items.append(item)
        else:
            self._sections.append(KpiRow([item]))
        return self

    def table(
        self,
        title: str,
        df: pd.DataFrame,
        *,
        max_rows: int | None = 50,
        formats: Mapping[str, CellFormat] | None = None,
        caption: str | None = None,
    ) -> Self:
        """Add a table: the first ``max_rows`` rows in HTML (None shows all), the whole frame in exports.

        ``formats`` maps a column to a format spec (``",.1%"``) or a callable; numbers otherwise get
        separators and a consistent number of decimals per column. A data-bearing index is shown
        and exported as leading columns.
        """
        if not isinstance(df, pd.DataFrame):
            raise ReportError(f"expected a DataFrame, got {type(df).__name__}", source=title, retriable=False)
        if max_rows is not None and max_rows < 0:
            raise ReportError("max_rows must be >= 0 or None", source=title, retriable=False)
        frame = df.copy(deep=False)  # copy-on-write: later edits by the author do not leak in
        shown = _export.flat(frame if max_rows is None else frame.head(max_rows))
        unknown = set(formats or {}) - set(map(str, shown.columns))
        if unknown:
            raise ReportError(
                f"formats name unknown columns: {', '.join(sorted(unknown))}", source=title, retriable=False
            )
        if bad := [f"{column} ({spec!r})" for column, spec in (formats or {}).items() if not _readable(spec)]:
            raise ReportError(
                f"formats give specs that format nothing (no number, text or date): {', '.join(bad)}; "
                "write one like ',.2f', '.1%' or '%Y-%m-%d', or a callable",
                source=title,
                retriable=False,
            )
        columns, rows = _format_rows(shown, formats or {})
        slug = unique_name(slugify(title), self._ids)
        self._sections.append(Table(title, slug, columns, rows, len(frame), caption, frame))
        return self

    def chart(
        self,
        title: str,
        df: pd.DataFrame,
        *,
        x: str | None = None,
        y: str | Sequence[str] | None = None,
        kind: ChartKind = "line",
        x_label: str | None = None,
        y_label: str | None = None,
        caption: str | None = None,
        max_points: int | None = None,
    ) -> Self:
        """Add a chart (line, bar, barh, area, scatter or pie), drawn now as inline SVG.

        ``x=None`` plots against the index; ``y=None`` plots every numeric column. Frames larger
        than ``max_points`` (default 5,000 for lines and areas, 2,000 for scatter) are reduced first,
        and the chart says so.
        """
        from reports import charts  # matplotlib loads only for reports that draw

        slug = unique_name(f"chart-{slugify(title, default='')}".rstrip("-"), self._ids)
        try:
            drawn = charts.render(
                df, x=x, y=y, kind=kind, x_label=x_label, y_label=y_label, max_points=max_points, salt=slug
            )
        except ReportError as err:
            raise ReportError(err.message, source=title, retriable=err.retriable) from err
        except (ValueError, TypeError) as err:
            raise ReportError(f"cannot draw a {kind} chart: {err}", source=title, retriable=False) from err
        self._sections.append(ChartSection(title, slug, Markup(drawn.svg), drawn.note, caption))
        return self

    def note(self, text: str, *, title: str | None = None, markdown: bool = False) -> Self:
        """Add a paragraph of text, always escaped; ``markdown`` enables bold, italics, code and lists."""
        self._sections.append(Note(render_note(text, markdown=markdown), title))
        return self

    def page_break(self) -> Self:
        """Start a new printed page here (no effect on screen)."""
        self._sections.append(PageBreak())
        return self

    def render(self, formats: Iterable[Format] | Format = DEFAULT_FORMATS, *, prefix: str = "") -> dict[str, bytes]:
        """Render every requested format to ``{name: bytes}``.

        Names are ``report.html``, ``tables/<slug>.csv``, ``tables/<slug>.parquet`` and
        ``report.xlsx`` (one sheet per table), each after ``prefix`` (e.g. ``"sales/"``). Data files
        are skipped when the report has no tables; the HTML links every table to its files.

        Raises:
            ReportError: an unknown format or a bad prefix, a frame Parquet cannot store, or a
                table over Excel's row limit when ``xlsx`` is asked for.
        """
        wanted = _check_formats((formats,) if isinstance(formats, str) else formats)
        _check_prefix(prefix)
        tables = self.tables
        links = {t.slug: [f"tables/{t.slug}.{f}" for f in ("csv", "parquet") if f in wanted] for t in tables}
        if "xlsx" in wanted and tables:
            for names in links.values():
                names.append("report.xlsx")
        files: dict[str, bytes] = {}
        if "html" in wanted:
            files[f"{prefix}report.html"] = self._html(links).encode("utf-8")
        for t in tables:
            if "csv" in wanted:
                files[f"{prefix}tables/{t.slug}.csv"] = _export.to_csv(t.frame)
            if "parquet" in wanted:
                try:
                    files[f"{prefix}tables/{t.slug}.parquet"] = _export.to_parquet(t.frame)
                except ReportError as err:
                    raise ReportError(err.message, source=t.title, retriable=err.retriable) from err
        if "xlsx" in wanted and tables:
            files[f"{prefix}report.xlsx"] = _export.to_xlsx([(t.title, t.frame) for t in tables])
        return files

    def write(
        self, writer: Writer, formats: Iterable[Format] | Format = DEFAULT_FORMATS, *, prefix: str = ""
    ) -> dict[str, object]:
        """Render and hand every file to ``writer(name, data, content_type)``; returns its answers by name."""
        files = self.render(formats, prefix=prefix)
        return {name: writer(name, data, _export.CONTENT_TYPES[name.rsplit(".", 1)[1]]) for name, data in files.items()}

    def _html(self, links: Mapping[str, list[str]]) -> str:
        sections = [replace(s, files=links.get(s.slug, [])) if isinstance(s, Table) else s for s in self._sections]
        context = {
            "title": self.title,
            "subtitle": self.subtitle,
            "period": self.period,
            "generated_at": self.generated_at.strftime("%Y-%m-%d %H:%M %Z").strip(),
            "sections": sections,
            "extra": self.extra,
        }
        return _templating.render(_templating.TEMPLATE, self._dirs, context)


def _format_rows(shown: pd.DataFrame, formats: Mapping[str, CellFormat]) -> tuple[list[Column], list[list[str]]]:
    columns, cells = [], []
    for name, series in shown.items():
        numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
        spec = formats.get(str(name)) or _default_spec(str(name), series)
        columns.append(Column(str(name), numeric))
        cells.append([format_cell(v, spec) for v in series.tolist()])
    return columns, [list(row) for row in zip(*cells, strict=True)] if cells else []


def _default_spec(name: str, series: pd.Series) -> str | None:
    """One number format per column, so decimals line up down the column."""
    if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(series.dtype):
        return None
    if pd.api.types.is_integer_dtype(series.dtype):
        return "d" if plain_integer_column(name) else ",d"
    values = series.dropna().abs()
    if values.empty or (values % 1 == 0).all():
        return ",.0f"
    return ",.4f" if values.max() < 0.1 else ",.2f"


def _check_formats(formats: Iterable[str]) -> set[str]:
    wanted = set(formats)
    unknown = wanted - set(FORMATS)
    if unknown:
        raise ReportError(
            f"unknown format(s) {', '.join(sorted(unknown))}; use any of {', '.join(FORMATS)}", retriable=False
        )
    return wanted


def _check_prefix(prefix: str) -> None:
    if prefix.startswith("/") or ".." in prefix.split("/"):
        raise ReportError(f"prefix must be a relative path without '..', got {prefix!r}", retriable=False)


#: One value of each kind a cell may hold but dates: a format spec that formats none of them is a mistake in the
#: call. (A date takes any spec as a strftime pattern, so a spec is read as one only when it has a '%' directive.)
_SAMPLES = (1.5, 7, "text")


def _readable(spec: CellFormat) -> bool:
    """Whether a cell format could format anything (a callable is the author's to get right). Cells a valid spec
    does not fit (text in a number column) fall back to plain text, so only a spec that fits no kind is refused."""
    if not isinstance(spec, str) or "%" in spec and datetime(2026, 1, 31).strftime(spec) != spec:
        return True
    for sample in _SAMPLES:
        try:
            format(sample, spec)
        except (TypeError, ValueError):
            continue
        return True
    return False
