"""The sales report itself, apart from the handler so it can be reused (the report benchmark builds it too)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from reports import Report

WINDOW_DAYS = 30


#: The columns the report reads (one row per order line).
COLUMNS = ("order_id", "date", "region", "product", "category", "units", "unit_price", "revenue")


def load(frame: pd.DataFrame) -> pd.DataFrame:
    """Types the report relies on, whatever the source (CSV text, Parquet, SQL rows); ValueError naming the
    column when the data is not sales data."""
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        has = ", ".join(map(str, frame.columns)) or "no columns"
        raise ValueError(f"the data lacks the column(s) {', '.join(missing)} (it has {has})")
    numbers = {}
    for column in ("units", "unit_price", "revenue"):
        try:
            numbers[column] = pd.to_numeric(frame[column])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column {column!r} must hold numbers ({exc})") from None
    try:
        dates = pd.to_datetime(frame["date"]).dt.normalize()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"column 'date' must hold dates ({exc})") from None
    return frame.assign(date=dates, **numbers)  # other columns not copied


@dataclass
class Figures:
    start: date
    end: date
    revenue: float
    previous_revenue: float
    orders: int
    previous_orders: int
    units: int
    by_region: pd.DataFrame
    by_product: pd.DataFrame
    daily: pd.DataFrame
    by_category: pd.DataFrame


def figures(sales: pd.DataFrame, day: date | None = None) -> Figures:
    """The 30 days up to ``day`` (default: the newest day in the data), compared with the 30 before."""
    end = pd.Timestamp(day) if day else sales["date"].max()
    start = end - timedelta(days=WINDOW_DAYS - 1)
    current = sales[(sales["date"] >= start) & (sales["date"] <= end)]
    previous = sales[(sales["date"] >= start - timedelta(days=WINDOW_DAYS)) & (sales["date"] < start)]
    by_region = (
        current.groupby("region")
        .agg(revenue=("revenue", "sum"), orders=("order_id", "count"), units=("units", "sum"))
        .sort_values("revenue", ascending=False)
    )
    by_region["share"] = by_region["revenue"] / by_region["revenue"].sum()
    by_product = (
        current.groupby(["product", "category"])
        .agg(revenue=("revenue", "sum"), units=("units", "sum"), orders=("order_id", "count"))
        .sort_values("revenue", ascending=False)
        .reset_index()
    )
    return Figures(
        start=start.date(),
        end=end.date(),
        revenue=float(current["revenue"].sum()),
        previous_revenue=float(previous["revenue"].sum()),
        orders=len(current),
        previous_orders=len(previous),
        units=int(current["units"].sum()),
        by_region=by_region,
        by_product=by_product,
        daily=current.groupby("date").agg(revenue=("revenue", "sum")).reset_index(),
        by_category=current.groupby("category").agg(revenue=("revenue", "sum")).reset_index(),
    )


def _delta(now: float, before: float) -> float | None:
    return (now - before) / before if before else None


def build(sales: pd.DataFrame, day: date | None = None, *, source: str = "sample data") -> tuple[Report, dict]:
    """The report, and a small JSON summary for the run's result."""
    f = figures(sales, day)
    report = Report("Sales report", period=(f.start, f.end), subtitle=f"Last {WINDOW_DAYS} days, from {source}")
    report.kpi("Revenue", f.revenue, unit="€", compact=True, delta=_delta(f.revenue, f.previous_revenue))
    report.kpi("Orders", f.orders, decimals=0, delta=_delta(f.orders, f.previous_orders))
    report.kpi("Average order", f.revenue / f.orders if f.orders else 0.0, unit="€", decimals=2)
    report.kpi("Units sold", f.units, decimals=0, compact=True)
    report.chart("Revenue per day", f.daily, x="date", y="revenue", kind="line")
    report.chart("Revenue by region", f.by_region.reset_index(), x="region", y="revenue", kind="bar")
    report.chart("Revenue by category", f.by_category, x="category", y="revenue", kind="pie")
    report.table("By region", f.by_region, formats={"share": ".1%"})
    report.table("Products", f.by_product, max_rows=20)
    report.note(f"Compared with the {WINDOW_DAYS} days before. Data: {source}.")
    summary = {
        "period": [f.start.isoformat(), f.end.isoformat()],
        "revenue": round(f.revenue, 2),
        "orders": f.orders,
        "regions": {str(k): round(float(v), 2) for k, v in f.by_region["revenue"].items()},
    }
    return report, summary
