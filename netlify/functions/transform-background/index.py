"""A batch transform: normalises a messy orders CSV into a Parquet dataset partitioned by country.

Rows are read in chunks (memory stays bounded however big the file is) and each chunk is checkpointed, so a
retry resumes where the failed attempt stopped. Broken rows go to rejects.jsonl with the reason; the run's
result counts rows in, out and rejected. Output: output/country=DE/part-....parquet and so on.

The source is ``ORDERS_SOURCE`` from the function's environment (``s3://bucket/orders/`` or a path; default
data/orders.csv beside this file), never the payload: the function's URL is public, and a caller must not
choose what the worker reads, nor make unbounded work. Payload (all optional): {"chunk_rows": 500 (10 to
100,000), "children": 4 (1 to 32)}. With "children", the
file is split over that many child runs that every worker can take, and this run merges their output when
they are done.
"""

import json
import os

import pandas as pd

from jobs.batch import Batch, ReadOptions
from jobs.retry import NonRetriable

#: What a caller may ask for (the URL is public): chunks big enough to be worth a round trip, small enough to keep
#: a worker's memory low, and no more child runs than the work is worth.
LIMITS = {"chunk_rows": (10, 100_000), "children": (1, 32)}
COLUMNS = ["order_id", "ordered_at", "customer_email", "country", "amount", "currency"]
COUNTRIES = {"DE", "FR", "NL", "ES", "IT", "PL"}


def normalise(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean one chunk; return (good rows, rejected rows with a reason)."""
    out = pd.DataFrame({"order_id": df["order_id"].str.strip().str.upper()})
    iso = pd.to_datetime(df["ordered_at"], format="%Y-%m-%dT%H:%M:%S", errors="coerce", utc=True)
    dmy = pd.to_datetime(df["ordered_at"], format="%d/%m/%Y %H:%M", errors="coerce", utc=True)
    out["ordered_at"] = iso.fillna(dmy)
    out["customer_email"] = df["customer_email"].str.strip().str.lower()
    out["country"] = df["country"].str.strip().str.upper()
    out["amount"] = pd.to_numeric(df["amount"].str.replace(",", "", regex=False), errors="coerce")
    out["currency"] = df["currency"].str.strip().str.upper()

    reason = pd.Series(None, index=df.index, dtype="object")
    reason = reason.mask(~out["country"].isin(COUNTRIES), "unknown country: " + df["country"].fillna(""))
    reason = reason.mask(out["ordered_at"].isna(), "unparseable date: " + df["ordered_at"].fillna(""))
    reason = reason.mask(out["amount"].isna(), "amount is not a number: " + df["amount"].fillna(""))
    reason = reason.mask(out["order_id"].fillna("") == "", "missing order_id")
    bad = reason.notna()
    return out[~bad], df[bad].assign(reason=reason[bad])


def handler(event, context):
    payload = json.loads(event.get("body") or "{}")
    if not isinstance(payload, dict):
        raise NonRetriable(f'the payload must be a JSON object like {{"children": 4}}, not {payload!r:.60}')
    if "source" in payload:
        raise NonRetriable(
            "the payload names a source, but the source is set in the function's environment (ORDERS_SOURCE), "
            "never by a caller"
        )
    batch = Batch(
        context,
        os.environ.get("ORDERS_SOURCE", "data/orders.csv"),
        normalise,
        sink="parquet",
        partition_by=["country"],
        chunk_rows=_whole(payload, "chunk_rows", 500),
        read=ReadOptions(column_types=dict.fromkeys(COLUMNS, "string")),
    )
    if payload.get("children"):
        return batch.fan_out(event, children=_whole(payload, "children", 1))
    return batch.run(event)


def _whole(payload, key, default):
    """``payload[key]`` as a whole number within ``LIMITS``; a wrong one fails the run at once (no retry can help)."""
    value, (low, high) = payload.get(key, default), LIMITS[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise NonRetriable(f'"{key}" must be a whole number from {low} to {high}, not {value!r:.60}')
    return value
