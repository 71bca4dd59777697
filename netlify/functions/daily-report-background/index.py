"""A scheduled background function (``55 23 * * *`` in netlify.toml): the sales report of one day, as report.html,
every table as CSV and Parquet, and report.xlsx, under ``<day>/`` in the run's artifacts.

Which day: ``{"day": "2026-03-01"}`` in the payload; else the day the schedule's tick is for (its
``scheduled_for``, UTC), so a backfill of February builds February's reports; else today (UTC). The report
of a given day is then at ``GET /api/functions/daily-report-background/latest/artifacts/2026-03-01/report.html``.

Where the data comes from is the function's environment, never the payload: its URL is public, and a caller
must not choose what the worker reads. ``SALES_DB`` (any SQLAlchemy URL) with ``SALES_QUERY`` (default
``SELECT * FROM sales``), else ``SALES_SOURCE`` (CSV, Parquet or JSON Lines, local or S3), else generated sample
sales that cover whatever period is asked for (the same numbers every time). Set them in netlify.toml::

    [backburner.functions."daily-report-background"]
      environment = { SALES_SOURCE = "s3://bucket/sales.parquet" }

A day the data has no sales for fails the run at once (NonRetriable: retrying cannot add data), saying which
days the data covers.
"""

import json
import os
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
    if named := sorted({"source", "db", "query"} & set(payload)):
        raise NonRetriable(
            f"the payload names {', '.join(named)}, but where the data comes from is set in the function's "
            "environment (SALES_SOURCE, or SALES_DB and SALES_QUERY), never by a caller; the payload picks the day"
        )
    day = report_day(payload, context)
    if os.environ.get("SALES_DB"):
        source = os.environ["SALES_DB"].split("@")[-1]
        sales = read_sql(os.environ.get("SALES_QUERY", "SELECT * FROM sales"), os.environ["SALES_DB"])
    elif os.environ.get("SALES_SOURCE"):
        source = os.environ["SALES_SOURCE"]
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
