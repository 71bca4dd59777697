"""A scheduled background function (`@daily` in netlify.toml): builds the sales report from the sample data
shipped beside it, and writes report.html plus every table as CSV and Parquet as the run's artifacts.

GET /api/functions/daily-report-background/latest/artifacts/report.html serves the newest copy.

A payload can point it elsewhere: {"source": "s3://bucket/sales.parquet"} (CSV, Parquet or JSON Lines, local or
S3), or {"db": "sqlite:///sales.db", "query": "SELECT * FROM sales"} (any SQLAlchemy URL), and {"day": "2026-03-31"}.
"""

import json
from datetime import date
from pathlib import Path

from sales_report import build, load

from reports import read_sql, read_table

SAMPLE = Path(__file__).parent / "data" / "sales.csv"


def handler(event, context):
    payload = json.loads(event.get("body") or "{}")
    if payload.get("next_run"):  # a schedule tick: Netlify's body, not a payload
        payload = {}
    if payload.get("db"):
        source = payload["db"].split("@")[-1]
        sales = read_sql(payload.get("query", "SELECT * FROM sales"), payload["db"])
    else:
        source = payload.get("source") or str(SAMPLE)
        sales = read_table(source)
    context.log.info("read %d rows from %s", len(sales), source)
    context.progress(1, 3, "data read")
    day = date.fromisoformat(payload["day"]) if payload.get("day") else None
    report, summary = build(load(sales), day, source=Path(source).name if "://" not in source else source)
    context.progress(2, 3, "report built")
    written = report.write(context.artifacts.write)
    context.progress(3, 3, "written")
    return {**summary, "rows": len(sales), "artifacts": sorted(written)}
