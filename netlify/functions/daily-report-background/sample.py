"""Sample sales for any period, generated the same way every time: each day's orders come from a generator
seeded with that day, so the report of 2026-03-01 shows the same numbers today, tomorrow and in a backfill,
and two overlapping periods agree on every day they share.

    python sample.py 2026-01-01 2026-03-31 > sales.csv     # the sample as a file, to try other sources
"""

from __future__ import annotations

import random
import sys
from datetime import date, timedelta

import pandas as pd

PRODUCTS = {  # product: (category, list price, weight)
    "Espresso machine": ("Appliances", 349.0, 1),
    "Grinder": ("Appliances", 129.0, 2),
    "Kettle": ("Appliances", 59.0, 2),
    "Beans 1kg": ("Coffee", 24.5, 6),
    "Beans 250g": ("Coffee", 7.9, 8),
    "Cups (set of 6)": ("Accessories", 32.0, 3),
}
REGIONS = {"North": 1.0, "South": 0.8, "East": 1.3, "West": 0.6}
COLUMNS = ["date", "order_id", "region", "product", "category", "units", "unit_price", "revenue"]


def orders_on(day: date) -> list[dict[str, object]]:
    """One day's orders: 20 to 45 of them, more on weekdays, always the same for the same day."""
    rng = random.Random(day.toordinal())
    products, regions = list(PRODUCTS), list(REGIONS)
    count = rng.randint(20, 35) + (10 if day.weekday() < 5 else 0)
    rows = []
    for n in range(count):
        product = rng.choices(products, weights=[p[2] for p in PRODUCTS.values()])[0]
        category, price, _ = PRODUCTS[product]
        units = rng.randint(1, 4 if category == "Appliances" else 9)
        unit_price = round(price * rng.choice([1.0, 1.0, 1.0, 0.9, 0.85]), 2)
        rows.append(
            {
                "date": day.isoformat(),
                "order_id": f"SO-{day:%Y%m%d}-{n + 1:03d}",
                "region": rng.choices(regions, weights=list(REGIONS.values()))[0],
                "product": product,
                "category": category,
                "units": units,
                "unit_price": unit_price,
                "revenue": round(units * unit_price, 2),
            }
        )
    return rows


def sales_between(first: date, last: date) -> pd.DataFrame:
    """Every order from ``first`` to ``last``, both included."""
    days = (last - first).days + 1
    rows = [row for n in range(max(0, days)) for row in orders_on(first + timedelta(days=n))]
    return pd.DataFrame(rows, columns=COLUMNS)


if __name__ == "__main__":
    start, end = (date.fromisoformat(arg) for arg in sys.argv[1:3])
    sales_between(start, end).to_csv(sys.stdout, index=False)
