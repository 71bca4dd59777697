"""Reports from pandas DataFrames: KPIs, tables and charts to one self-contained HTML page, plus
CSV, Parquet and XLSX exports.

A pure library: it imports nothing from the Backburner runtime, which hands ``Report.write`` its
artifact writer.

    from reports import Report
    rep = Report("Daily sales", period="2026-11-27")
    rep.kpi("Revenue", 12345.6, unit="€", delta=0.042)
    rep.table("By region", by_region)
    rep.chart("Revenue by day", daily, x="day", y="revenue")
    rep.write(context.artifacts.write)
"""

from reports.errors import ReportError
from reports.report import DEFAULT_FORMATS, FORMATS, Report
from reports.sources import read_sql, read_table

__all__ = [
    # building
    "Report",
    "FORMATS",
    "DEFAULT_FORMATS",
    # sources
    "read_table",
    "read_sql",
    # errors
    "ReportError",
]
