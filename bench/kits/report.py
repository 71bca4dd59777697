"""Benchmark 1: a 1M-row sales report with the reports kit vs a plain pandas + matplotlib script.

Both sides do the same work from the same Parquet file: read 1M rows, the group-bys of the example's sales
report (KPIs, by region, by product, per day, by category), three charts as SVG, one HTML page, and both
tables as CSV and Parquet files. Each side runs in a warm process (imports and matplotlib's font cache are
not timed); the figure is the median of several alternating runs. Target: kit / plain <= 1.25.

    .venv/bin/python bench/kits/report.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "netlify" / "functions" / "daily-report-background")]

import sales_report  # noqa: E402


def make_data(rows: int, path: Path) -> None:
    """The example's sales shape, vectorised (numpy), deterministic."""
    rng = np.random.default_rng(42)
    products = list(sales_report_products())
    pick = rng.choice(len(products), rows, p=np.array([1, 2, 2, 6, 8, 3]) / 22)
    prices = np.array([p[2] for p in products])[pick] * rng.choice([1.0, 1.0, 1.0, 0.9, 0.85], rows)
    units = rng.integers(1, 9, rows)
    frame = pd.DataFrame(
        {
            "date": (pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(rows) * 90 // rows, unit="D")).strftime(
                "%Y-%m-%d"
            ),
            "order_id": [f"SO-{n:07d}" for n in range(1, rows + 1)],
            "region": rng.choice(["North", "South", "East", "West"], rows, p=[0.27, 0.22, 0.35, 0.16]),
            "product": np.array([p[0] for p in products])[pick],
            "category": np.array([p[1] for p in products])[pick],
            "units": units,
            "unit_price": prices.round(2),
            "revenue": (units * prices).round(2),
        }
    )
    frame.to_parquet(path)


def sales_report_products() -> list[tuple[str, str, float]]:
    return [("Espresso machine", "Appliances", 349.0), ("Grinder", "Appliances", 129.0),
            ("Kettle", "Appliances", 59.0), ("Beans 1kg", "Coffee", 24.5), ("Beans 250g", "Coffee", 7.9),
            ("Cups (set of 6)", "Accessories", 32.0)]  # fmt: skip


def with_kit(data: Path, out: Path) -> None:
    report, _ = sales_report.build(sales_report.load(pd.read_parquet(data)))
    for name, content in report.render(("html", "csv", "parquet")).items():
        target = out / "kit" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def plain(data: Path, out: Path) -> None:
    """What someone would write by hand: the same numbers, charts, page and files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sales = pd.read_parquet(data)
    sales["date"] = pd.to_datetime(sales["date"]).dt.normalize()
    for column in ("units", "unit_price", "revenue"):
        sales[column] = pd.to_numeric(sales[column])
    end = sales["date"].max()
    start = end - timedelta(days=29)
    current = sales[(sales["date"] >= start) & (sales["date"] <= end)]
    previous = sales[(sales["date"] >= start - timedelta(days=30)) & (sales["date"] < start)]
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
    daily = current.groupby("date").agg(revenue=("revenue", "sum")).reset_index()
    by_category = current.groupby("category").agg(revenue=("revenue", "sum")).reset_index()
    revenue, orders = current["revenue"].sum(), len(current)
    kpis = {
        "Revenue": f"€{revenue / 1e6:.1f}M ({(revenue / previous['revenue'].sum() - 1):+.1%})",
        "Orders": f"{orders:,} ({orders / len(previous) - 1:+.1%})",
        "Average order": f"€{revenue / orders:,.2f}",
        "Units sold": f"{current['units'].sum() / 1e6:.1f}M",
    }

    def svg(draw) -> str:
        fig, ax = plt.subplots(figsize=(8, 3.2))
        draw(ax)
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        plt.close(fig)
        return buf.getvalue()

    charts = [
        svg(lambda ax: ax.plot(daily["date"], daily["revenue"])),
        svg(lambda ax: ax.bar(by_region.index, by_region["revenue"])),
        svg(lambda ax: ax.pie(by_category["revenue"], labels=by_category["category"])),
    ]
    cards = "".join(f"<div class=kpi><b>{k}</b> {v}</div>" for k, v in kpis.items())
    tables = by_region.to_html(formatters={"share": "{:.1%}".format}) + by_product.head(20).to_html(index=False)
    html = f"<html><head><title>Sales report</title></head><body><h1>Sales report</h1>{cards}{''.join(charts)}"
    html += f"{tables}</body></html>"
    folder = out / "plain" / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    (out / "plain" / "report.html").write_text(html)
    for name, frame in (("by-region", by_region), ("products", by_product)):
        frame.to_csv(folder / f"{name}.csv")
        frame.to_parquet(folder / f"{name}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as folder:
        data = Path(folder) / "sales.parquet"
        make_data(args.rows, data)
        out = Path(folder) / "out"
        with_kit(data, out)  # warm-up: imports, matplotlib fonts, first-use caches
        plain(data, out)
        times: dict[str, list[float]] = {"kit": [], "plain": []}
        for _ in range(args.repeat):
            for name, work in (("kit", with_kit), ("plain", plain)):
                started = time.perf_counter()
                work(data, out)
                times[name].append(time.perf_counter() - started)
        kit, base = statistics.median(times["kit"]), statistics.median(times["plain"])
        print(f"report of {args.rows:,} rows: group-bys, 3 charts, HTML + CSV + Parquet (median of {args.repeat})")
        print(f"  reports kit        {kit:8.3f} s   ({', '.join(f'{t:.3f}' for t in times['kit'])})")
        print(f"  plain pandas       {base:8.3f} s   ({', '.join(f'{t:.3f}' for t in times['plain'])})")
        verdict = "OK" if kit / base <= 1.25 else "MISSED"
        print(f"  ratio kit/plain    {kit / base:8.2f}     target <= 1.25: {verdict}")


if __name__ == "__main__":
    main()
