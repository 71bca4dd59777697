"""A scheduled background function (``55 23 * * *`` in netlify.toml): the sales report of one day, as report.html,
every table as CSV and Parquet, and report.xlsx, under ``<day>/`` in the run's artifacts.

Which day: ``{"day": "2026-03-01"}`` in the payload; else the day the schedule's tick is for (its
``scheduled_for``, UTC), so a backfill of February builds February's reports; else today (UTC). The report
of a given day is then at ``GET /api/functions/daily-report-background/latest/artifacts/2026-03-01/report.html``.

Where the data comes from: generated sample sales that cover whatever period is asked for (the same numbers
every time), or ``{"source": "s3://bucket/sales.parquet"}`` (CSV, Parquet or JSON Lines, local or S3), or
``{"db": "sqlite:///sales.db", "query": "SELECT * FROM sales"}`` (any SQLAlchemy URL). A day the data has no
sales for fails the run at once (NonRetriable: retrying cannot add data), saying which days the data covers.
"""

import json
from datetime import UTC, date, datetime, timedelta

from sales_report import WINDOW_DAYS, build, load
from sample import sales_between

from jobs.retry import NonRetriable
from reports import read_sql, read_table

FORMATS = ("html", "csv", "parquet", "xlsx")


def report_day(payload, context):
    """The day the payload names, else the day of the schedule's tick, else today (UTC)."""
    if payload.get("day"):
        try:
            return date.fromisoformat(payload["day"])
        except (TypeError, ValueError):
            raise NonRetriable(f"'day' must be a date like 2026-03-01, not {payload['day']!r}") from None
    if context.scheduled_for:
        return datetime.fromisoformat(context.scheduled_for.replace("Z", "+00:00")).date()
    return datetime.now(UTC).date()


def handler(event, context):
    payload = json.loads(event.get("body") or "{}")
    if not isinstance(payload, dict):
        raise NonRetriable(f'the payload must be a JSON object like {{"day": "2026-03-01"}}, not {payload!r:.60}')
    day = report_day(payload, context)
    if payload.get("db"):
        source = payload["db"].split("@")[-1]
        sales = read_sql(payload.get("query", "SELECT * FROM sales"), payload["db"])
    elif payload.get("source"):
        source = payload["source"]
        sales = read_table(source)
    else:  # this day and the two 30-day windows the report compares
        source = "sample data"
        sales = sales_between(day - timedelta(days=2 * WINDOW_DAYS - 1), day)
    context.log.info("read %d rows from %s for %s", len(sales), source, day)
    try:
        sales = load(sales)
    except ValueError as exc:  # not sales data: retrying reads the same
        raise NonRetriable(f"{source}: {exc}") from None
    if not (sales["date"].dt.date == day).any():
        first, last = sales["date"].min(), sales["date"].max()
        covers = f"it covers {first:%Y-%m-%d} to {last:%Y-%m-%d}" if len(sales) else "it is empty"
        raise NonRetriable(f"No sales data for {day} in {source} ({covers}); there is no report for that day.")
    context.progress(1, 3, "data read")
    report, summary = build(sales, day, source=source.rsplit("/", 1)[-1] if "://" not in source else source)
    context.progress(2, 3, "report built")
    written = report.write(context.artifacts.write, FORMATS, prefix=f"{day}/")
    context.progress(3, 3, "written")
    return {**summary, "day": day.isoformat(), "rows": len(sales), "artifacts": sorted(written)}
