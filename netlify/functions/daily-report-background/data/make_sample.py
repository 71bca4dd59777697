"""Regenerate sales.csv, the example's sample data: `python make_sample.py` (deterministic, seeded).

3,000 orders over 90 days, four regions, six products; `python make_sample.py 1000000 big.csv` makes a
larger file with the same shape (the report benchmark uses it).
"""

import csv
import random
import sys
from datetime import date, timedelta
from pathlib import Path

PRODUCTS = {  # product: (category, list price)
    "Espresso machine": ("Appliances", 349.0),
    "Grinder": ("Appliances", 129.0),
    "Kettle": ("Appliances", 59.0),
    "Beans 1kg": ("Coffee", 24.5),
    "Beans 250g": ("Coffee", 7.9),
    "Cups (set of 6)": ("Accessories", 32.0),
}
REGIONS = {"North": 1.0, "South": 0.8, "East": 1.3, "West": 0.6}
FIRST_DAY = date(2026, 1, 1)
DAYS = 90


def rows(count: int, seed: int = 42):
    rng = random.Random(seed)
    names, weights = list(REGIONS), list(REGIONS.values())
    products = list(PRODUCTS)
    for n in range(count):
        day = FIRST_DAY + timedelta(days=int(DAYS * n / count))
        product = rng.choices(products, weights=[1, 2, 2, 6, 8, 3])[0]
        category, price = PRODUCTS[product]
        units = rng.randint(1, 4 if category == "Appliances" else 9)
        unit_price = round(price * rng.choice([1.0, 1.0, 1.0, 0.9, 0.85]), 2)
        yield {
            "date": day.isoformat(),
            "order_id": f"SO-{n + 1:07d}",
            "region": rng.choices(names, weights=weights)[0],
            "product": product,
            "category": category,
            "units": units,
            "unit_price": unit_price,
            "revenue": round(units * unit_price, 2),
        }


def main(count: int = 3000, target: str = "sales.csv") -> None:
    path = Path(target) if Path(target).is_absolute() else Path(__file__).parent / target
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(next(rows(1))))
        writer.writeheader()
        writer.writerows(rows(count))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000, sys.argv[2] if len(sys.argv) > 2 else "sales.csv")
