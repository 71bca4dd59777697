"""Combines several JSON APIs into one table: orders (Link-header pages), customers (cursor), products (page
numbers), fetched concurrently with retries, per-host limits and remembered ETags (an unchanged page costs a
304 on the next run). In `dev` the APIs are the sample-api function of this site, so it works offline; it
finds the API at BACKBURNER_URL (default http://127.0.0.1:8888).

Artifacts: combined.parquet (one row per record, with a `source` column), combined.json, orders.csv (orders
joined with their customer and product). If a source fails, the run still succeeds and its result lists it.
"""

import os

from jobs.aggregate import Cursor, LinkHeader, PageNumber, Source, aggregate


def sources(base: str) -> list[Source]:
    api = base.rstrip("/") + "/.netlify/functions/sample-api"
    return [
        Source("orders", f"{api}/orders", paginate=LinkHeader(), timeout=10, retries=3),
        Source("customers", f"{api}/customers", items="data", paginate=Cursor("cursor", "next_cursor")),
        Source("products", f"{api}/products", paginate=PageNumber("page", start=1)),
    ]


async def handler(event, context):
    base = os.environ.get("BACKBURNER_URL", "http://127.0.0.1:8888")
    combined = await aggregate(sources(base), context=context, on_error="continue", per_host=4)
    combined.write(context.artifacts.write, "combined.parquet")
    combined.write(context.artifacts.write, "combined.json")
    records = combined.records()
    if {"orders", "customers", "products"} <= records.keys():
        import pandas as pd

        orders = pd.DataFrame(records["orders"])
        customers = pd.DataFrame(records["customers"]).rename(columns={"id": "customer", "name": "customer_name"})
        products = pd.DataFrame(records["products"])
        joined = orders.merge(customers, on="customer", how="left").merge(products, on="sku", how="left")
        joined["revenue"] = joined["units"] * joined["price"]
        context.artifacts.write("orders.csv", joined)
    return combined.summary()
