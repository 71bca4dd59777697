"""The HTML page: self-contained, escaped, formatted and printable."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from reports import Report, ReportError
from tests.reports.conftest import GENERATED_AT, page

REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def test_page_is_self_contained_with_charts_kpis_and_title(report: Report, sales: pd.DataFrame) -> None:
    # Given a report with every kind of section
    report.kpi("Revenue", 12345.6, unit="€", delta=0.042)
    report.table("By region", sales.groupby("region", as_index=False).revenue.sum())
    report.chart("Revenue by day", sales, x="day", y="revenue", kind="line")
    report.note("Figures exclude refunds.")

    # When it is rendered
    html = page(report)

    # Then nothing is fetched from elsewhere and everything is inline
    assert not REMOTE.search(html)
    assert "<link" not in html and "<script" not in html and "@import" not in html
    assert "<style>" in html and "<svg" in html
    assert "<title>Daily sales · 2026-11-27</title>" in html
    assert "<h1>Daily sales</h1>" in html
    assert "€12,345.60" in html
    assert "+4.2%" in html
    assert "Figures exclude refunds." in html
    assert "2026-11-28 06:00 UTC" in html


def test_user_text_is_escaped_everywhere(report: Report) -> None:
    evil = "<script>alert(1)</script>"
    report.kpi(evil, evil)
    report.table(evil, pd.DataFrame({evil: [evil]}))
    report.note(f"Beware {evil}")
    report.note(f"**Beware** {evil}", markdown=True)

    html = page(report)

    assert "<script" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5


def test_markdown_lite_notes_render_emphasis_code_and_lists(report: Report) -> None:
    report.note("First **bold** and *soft* with `code`.\n\n- one\n- two", markdown=True, title="Notes")
    report.note("Plain *stays* plain.\nSecond line.")

    html = page(report)

    assert "<p>First <strong>bold</strong> and <em>soft</em> with <code>code</code>.</p>" in html
    assert "<ul><li>one</li><li>two</li></ul>" in html
    assert "<p>Plain *stays* plain.<br>Second line.</p>" in html
    assert "<h2>Notes</h2>" in html


def test_kpi_deltas_carry_direction_and_tone(report: Report) -> None:
    report.kpi("Revenue", 100, delta=0.042)
    report.kpi("Orders", 100, delta=-0.013)
    report.kpi("Latency", 120, unit="ms", delta=0.1, higher_is_better=False)
    report.kpi("Flat", 1, delta=0.0)
    report.kpi("Refund rate", 0.021, percent=True)

    html = page(report)

    assert re.search(r'kpi-delta good">▲ \+4\.2%', html)
    assert re.search(r'kpi-delta bad">▼ -1\.3%', html)
    assert re.search(r'kpi-delta bad">▲ \+10\.0%', html)
    assert re.search(r'kpi-delta neutral">■ 0\.0%', html)
    assert "120 ms" in html and "2.1%" in html
    assert html.count('class="kpi"') == 5
    assert html.count('class="section kpis"') == 1  # consecutive KPIs share one row


def test_print_css_breaks_pages_between_sections(report: Report) -> None:
    report.note("one").page_break().note("two")

    html = page(report)

    assert "@media print" in html and "@page" in html
    assert "break-inside: avoid" in html
    assert 'class="page-break"' in html


def test_long_tables_are_truncated_with_a_note(report: Report) -> None:
    frame = pd.DataFrame({"n": range(120), "value": np.arange(120) * 1000.5})

    report.table("Numbers", frame, max_rows=50)
    html = page(report)

    body = html.split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr>") == 50
    assert "Showing 50 of 120 rows." in html
    assert "49,024.50" in html  # the 50th row, formatted
    assert "50,025.00" not in html  # the 51st row is only in the exports


def test_a_one_row_table_says_row(report: Report) -> None:
    report.table("One", pd.DataFrame({"n": [1]})).table("Two", pd.DataFrame({"n": [1, 2]}))
    html = report.render(formats=("html", "csv"))["report.html"].decode()  # with its exports, the note counts
    assert "1 row." in html and "2 rows." in html and "1 rows" not in html


def test_table_cells_are_formatted_per_column(report: Report, sales: pd.DataFrame) -> None:
    frame = pd.DataFrame(
        {
            "year": [2025, 2026],
            "units": [1234567, 2],
            "price": [3.0, 4.5],
            "share": [0.25, 0.75],
            "day": pd.to_datetime(["2026-01-01 00:00", "2026-01-02 10:30"]),
            "ok": [True, False],
            "missing": [np.nan, 1.0],
        }
    )
    report.table("Cells", frame, formats={"share": ".0%"})

    html = page(report)

    assert ">2025<" in html and ">1,234,567<" in html
    assert ">3.00<" in html and ">4.50<" in html  # one number of decimals per column
    assert ">25%<" in html
    assert ">2026-01-02 10:30<" in html
    assert ">—<" in html
    assert '<th class="num" scope="col">units</th>' in html
    assert '<th scope="col">ok</th>' in html  # booleans are not right-aligned numbers


def test_a_meaningful_index_is_shown_as_a_column(report: Report, sales: pd.DataFrame) -> None:
    report.table("By region", sales.groupby("region")[["revenue"]].sum())

    html = page(report)

    assert '<th scope="col">region</th>' in html


def test_empty_tables_say_so(report: Report) -> None:
    report.table("Nothing", pd.DataFrame({"a": []}))

    assert "No rows." in page(report)


def test_same_inputs_render_the_same_page(sales: pd.DataFrame) -> None:
    def build() -> str:
        rep = Report("Same", generated_at=GENERATED_AT)
        rep.chart("A", sales, x="day", y="revenue").chart("B", sales, x="day", y="orders", kind="bar")
        return page(rep)

    assert build() == build()


def test_table_declaration_errors_name_the_table(report: Report) -> None:
    with pytest.raises(ReportError, match="Broken: formats name unknown columns: nope"):
        report.table("Broken", pd.DataFrame({"a": [1]}), formats={"nope": ".1f"})
    with pytest.raises(ReportError, match="Broken: expected a DataFrame"):
        report.table("Broken", [1, 2])
    with pytest.raises(ReportError, match=r"Broken: formats give specs that format nothing .*: a \(',\.2q'\)") as bad:
        report.table("Broken", pd.DataFrame({"a": [1.5]}), formats={"a": ",.2q"})
    assert bad.value.retriable is False
    # Specs for some kind of cell are fine, even where a cell of another kind falls back to plain text.
    report.table("Fine", pd.DataFrame({"a": [1.5, "n/a"]}), formats={"a": ",.2f"})
    report.table("Dates", pd.DataFrame({"a": [pd.Timestamp("2026-01-31")]}), formats={"a": "%d %b"})


def test_ids_are_unique_across_charts_and_tables(report: Report, sales: pd.DataFrame) -> None:
    for _ in range(2):
        report.chart("Revenue", sales, x="day", y="revenue")
        report.table("Revenue", sales.head(2))

    ids = re.findall(r'\bid="([^"]+)"', page(report))

    assert len(ids) == len(set(ids))
    assert {"revenue", "revenue-2", "chart-revenue", "chart-revenue-2"} <= set(ids)
