"""render() and write(): CSV, Parquet and XLSX that read back into the frames given."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from openpyxl import load_workbook

from reports import Report, ReportError, _export


def test_render_names_every_file_by_format(report: Report, sales: pd.DataFrame) -> None:
    report.chart("By region", sales, x="day", y="revenue")  # charts do not take table names
    report.table("By region", sales).table("By region", sales.head(3))

    files = report.render(formats=("html", "csv", "parquet", "xlsx"))

    assert list(files) == [
        "report.html",
        "tables/by-region.csv",
        "tables/by-region.parquet",
        "tables/by-region-2.csv",
        "tables/by-region-2.parquet",
        "report.xlsx",
    ]
    assert all(isinstance(data, bytes) and data for data in files.values())
    assert set(report.render(formats=["csv"])) == {"tables/by-region.csv", "tables/by-region-2.csv"}


def test_html_links_the_exports_of_each_table(report: Report, sales: pd.DataFrame) -> None:
    report.table("By region", sales, max_rows=5)

    html = report.render(formats=("html", "csv", "xlsx"))["report.html"].decode()

    assert 'href="tables/by-region.csv"' in html and 'href="report.xlsx"' in html
    assert "parquet" not in html


def test_csv_round_trips_to_the_input_frame(report: Report) -> None:
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "name": ['He said "hi"', "comma, inside", "line\nbreak"],
            "value": [0.1 + 0.2, np.nan, 1e-12],
            "flag": [True, False, True],
        }
    )
    report.table("Data", frame, max_rows=1)

    data = report.render(formats=("csv",))["tables/data.csv"]

    pdt.assert_frame_equal(pd.read_csv(io.BytesIO(data)), frame)


def test_csv_keeps_a_meaningful_index_as_columns(report: Report, sales: pd.DataFrame) -> None:
    grouped = sales.groupby("region")[["orders"]].sum()
    report.table("By region", grouped)

    data = report.render(formats=("csv",))["tables/by-region.csv"]

    pdt.assert_frame_equal(pd.read_csv(io.BytesIO(data)).set_index("region"), grouped)


def test_csv_writes_timestamps_readably() -> None:
    frame = pd.DataFrame(
        {
            "utc": pd.to_datetime(["2026-01-01 10:00"]).tz_localize("UTC"),
            "local": pd.to_datetime(["2026-01-01 10:00:00.250"]),
            "took": pd.to_timedelta([90], unit="s"),
        }
    )

    text = _export.to_csv(frame).decode()

    assert "2026-01-01 10:00:00Z" in text
    assert "2026-01-01 10:00:00.250" in text
    assert "0 days 00:01:30" in text
    pdt.assert_series_equal(pd.to_datetime(pd.read_csv(io.StringIO(text))["utc"]), frame["utc"], check_dtype=False)


def test_csv_falls_back_to_pandas_for_mixed_objects() -> None:
    frame = pd.DataFrame({"mixed": [{"a": 1}, [1, 2], "x"]})

    text = _export.to_csv(frame).decode()

    assert text.splitlines()[1:] == ["{'a': 1}", '"[1, 2]"', "x"]


def test_parquet_round_trips_exactly(report: Report, sales: pd.DataFrame) -> None:
    frame = sales.assign(day=sales["day"].dt.tz_localize("Europe/Berlin"), region=sales["region"].astype("category"))
    grouped = sales.groupby("region")[["revenue"]].sum()
    report.table("Sales", frame).table("Grouped", grouped)

    files = report.render(formats=("parquet",))

    pdt.assert_frame_equal(pd.read_parquet(io.BytesIO(files["tables/sales.parquet"])), frame)
    pdt.assert_frame_equal(pd.read_parquet(io.BytesIO(files["tables/grouped.parquet"])), grouped)


def test_parquet_accepts_non_string_column_names(report: Report) -> None:
    pivot = pd.DataFrame({2025: [1.0], 2026: [2.0]})
    report.table("Pivot", pivot)

    data = report.render(formats=("parquet",))["tables/pivot.parquet"]

    assert list(pd.read_parquet(io.BytesIO(data)).columns) == ["2025", "2026"]


def test_exports_are_a_snapshot_taken_when_the_table_is_added(report: Report) -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    report.table("Snap", frame)
    frame.loc[0, "a"] = 99

    data = report.render(formats=("csv",))["tables/snap.csv"]

    assert pd.read_csv(io.BytesIO(data))["a"].tolist() == [1, 2]


def test_xlsx_has_one_sheet_per_table_with_valid_unique_names(report: Report, sales: pd.DataFrame) -> None:
    titles = [
        "By region",
        "BY REGION",
        "Revenue by region and by product, all channels",
        "Revenue by region and by product, online only",
        "Cost / revenue [EUR]",
    ]
    for title in titles:
        report.table(title, sales.head(4))

    data = report.render(formats=("xlsx",))["report.xlsx"]

    names = load_workbook(io.BytesIO(data), read_only=True).sheetnames
    assert len(names) == len(titles)
    assert all(len(n) <= 31 for n in names)
    assert len({n.casefold() for n in names}) == len(names)
    assert names[0] == "By region"
    sheets = pd.read_excel(io.BytesIO(data), sheet_name=None)
    back = sheets[names[0]]
    pdt.assert_frame_equal(back, sales.head(4).astype({"day": back["day"].dtype}), check_exact=False)


def test_xlsx_writes_time_zones_as_wall_time_and_gaps_as_empty(report: Report) -> None:
    frame = pd.DataFrame(
        {
            "at": pd.to_datetime([None, "2026-01-01 10:00"]).tz_localize("Europe/Berlin"),
            "v": [np.nan, 1.5],
            "s": [None, "bell\x07"],
        }
    )
    report.table("TZ", frame)

    sheet = load_workbook(io.BytesIO(report.render(formats=("xlsx",))["report.xlsx"]))["TZ"]

    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("at", "v", "s")
    assert rows[1] == (None, None, None)
    assert str(rows[2][0]) == "2026-01-01 10:00:00"
    assert rows[2][1:] == (1.5, "bell")


def test_xlsx_refuses_tables_over_the_excel_row_limit(report: Report, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_export, "EXCEL_MAX_ROWS", 10)
    report.table("Too big", pd.DataFrame({"a": range(11)}))

    with pytest.raises(ReportError, match="Too big: 11 rows do not fit an Excel sheet"):
        report.render(formats=("xlsx",))
    assert "tables/too-big.csv" in report.render(formats=("csv",))


def test_reports_without_tables_render_only_html(report: Report) -> None:
    report.kpi("Only", 1)

    assert list(report.render(formats=("html", "csv", "parquet", "xlsx"))) == ["report.html"]


def test_default_formats_leave_out_the_slow_xlsx(report: Report, sales: pd.DataFrame) -> None:
    report.table("T", sales)

    assert list(report.render()) == ["report.html", "tables/t.csv", "tables/t.parquet"]
    assert list(report.render("csv")) == ["tables/t.csv"]  # one format may be passed bare


def test_write_hands_every_file_to_the_writer_with_its_content_type(report: Report, sales: pd.DataFrame) -> None:
    report.table("By region", sales)
    calls: list[tuple[str, bytes, str]] = []

    def writer(name: str, data: bytes, content_type: str) -> str:
        calls.append((name, data, content_type))
        return f"stored:{name}"

    answers = report.write(writer, formats=("html", "csv", "parquet", "xlsx"), prefix="daily/")

    assert answers == {name: f"stored:{name}" for name, _, _ in calls}
    assert {name: ctype for name, _, ctype in calls} == {
        "daily/report.html": "text/html; charset=utf-8",
        "daily/tables/by-region.csv": "text/csv; charset=utf-8",
        "daily/tables/by-region.parquet": "application/vnd.apache.parquet",
        "daily/report.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
    assert calls[0][1].startswith(b"<!doctype html>")


@pytest.mark.parametrize("formats", [("pdf",), ("html", "docx")])
def test_unknown_formats_are_refused(report: Report, formats: tuple[str, ...]) -> None:
    with pytest.raises(ReportError, match="unknown format"):
        report.render(formats=formats)  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["/abs/", "../up/", "a/../../b/"])
def test_prefixes_cannot_escape_the_artifact_folder(report: Report, prefix: str) -> None:
    with pytest.raises(ReportError, match="prefix"):
        report.render(prefix=prefix)
