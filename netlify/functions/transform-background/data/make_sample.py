"""Regenerate orders.csv, the transform example's messy input: `python make_sample.py [rows] [file]`.

Deterministic (seeded). About 3% of rows are broken on purpose (no order id, an amount that is not a number,
an unparseable date, an unknown country) so the example has rejects to show.
"""

import csv
import random
import sys
from datetime import datetime, timedelta
from pathlib import Path

COUNTRIES = ["de", "DE ", " fr", "FR", "nl", "Es", "it", "pl"]
CURRENCIES = ["eur", "EUR", " Eur"]
START = datetime(2026, 1, 1, 8, 0)


def rows(count: int, seed: int = 7):
    rng = random.Random(seed)
    for n in range(count):
        at = START + timedelta(minutes=37 * n)
        amount = round(rng.uniform(3, 900), 2)
        row = {
            "order_id": f"o-{n + 1:06d}",
            "ordered_at": at.strftime("%Y-%m-%dT%H:%M:%S") if n % 3 else at.strftime("%d/%m/%Y %H:%M"),
            "customer_email": f"  Customer{rng.randint(1, 400)}@Example.COM ",
            "country": rng.choice(COUNTRIES),
            "amount": f"{amount:,.2f}" if amount >= 1000 or n % 5 == 0 else str(amount),
            "currency": rng.choice(CURRENCIES),
        }
        broken = rng.random()
        if broken < 0.008:
            row["order_id"] = ""
        elif broken < 0.016:
            row["amount"] = rng.choice(["n/a", "twelve", "-"])
        elif broken < 0.024:
            row["ordered_at"] = "yesterday"
        elif broken < 0.03:
            row["country"] = "XX"
        yield row


def main(count: int = 2000, target: str = "orders.csv") -> None:
    path = Path(target) if Path(target).is_absolute() else Path(__file__).parent / target
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(next(rows(1))))
        writer.writeheader()
        writer.writerows(rows(count))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, sys.argv[2] if len(sys.argv) > 2 else "orders.csv")
