"""API aggregation: collect from many HTTP APIs concurrently and combine the records.

    from jobs.aggregate import Bearer, Cursor, LinkHeader, Source, aggregate

    SOURCES = [
        Source("orders", "https://api.example.com/orders", paginate=LinkHeader(), auth=Bearer("env:ORDERS_TOKEN")),
        Source("users", "https://users.example.com/v1/users", items="data", paginate=Cursor("cursor", "next")),
    ]

    async def handler(event, context):
        combined = await aggregate(SOURCES, context=context, on_error="continue")
        combined.write(context.artifacts.write, "combined.parquet")
        return combined.summary()

Per source: a timeout per request, retries with exponential backoff (``Retry-After`` honoured), auth whose
values can be ``env:NAME`` references (secrets stay out of netlify.toml and code), and pagination by Link
header, cursor or page number. Across sources: at most ``per_host`` requests in flight per host, and ETags
remembered between runs (``jobs.aggregate.cache``) so an unchanged page costs a 304. ``on_error="fail"``
raises ``AggregateError`` naming every failed source; ``"continue"`` returns what worked and lists the rest.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from ..errors import BackburnerError, ConfigError
from .cache import EtagCache, cache_for
from .fetch import HostLimits, SourceResult, fetch_source
from .spec import Basic, Bearer, Cursor, Header, LinkHeader, PageNumber, Source, sources_from

__all__ = [
    "AggregateError",
    "Aggregated",
    "Basic",
    "Bearer",
    "Cursor",
    "Header",
    "LinkHeader",
    "PageNumber",
    "Source",
    "aggregate",
    "collect",
    "sources_from",
]


class AggregateError(BackburnerError):
    """Sources failed and the policy is ``on_error="fail"``; ``failed`` maps each to its error."""

    status = 502
    code = "aggregate_failed"

    def __init__(self, failed: Mapping[str, str]) -> None:
        self.failed = dict(failed)
        listed = "; ".join(f"{name}: {error}" for name, error in self.failed.items())
        super().__init__(f"{len(self.failed)} source(s) failed: {listed}")


# -- running --------------------------------------------------------------------------------------------


@dataclass
class Aggregated:
    """Every source's result, in the order the sources were given."""

    results: dict[str, SourceResult]

    @property
    def failed(self) -> dict[str, str]:
        return {name: r.error for name, r in self.results.items() if r.error is not None}

    def records(self) -> dict[str, list[Any]]:
        return {name: r.records for name, r in self.results.items() if r.error is None}

    def frame(self) -> Any:
        """One DataFrame: a ``source`` column, then the records' fields (nested objects flattened a.b); a record
        that is not an object (a number, a string) is one ``value``."""
        import pandas as pd

        frames = [
            pd.json_normalize([r if isinstance(r, dict) else {"value": r} for r in records]).assign(source=name)
            for name, records in self.records().items()
        ]
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame({"source": pd.Series(dtype="str")})
        combined = pd.concat(frames, ignore_index=True)
        for column in combined.columns:  # one field, several JSON types across sources: keep it as text
            values = combined[column].dropna()
            if combined[column].dtype == object and len({type(v) for v in values}) > 1:
                combined[column] = combined[column].map(lambda v: v if v is None or v != v else str(v))
        return combined[["source", *[c for c in combined.columns if c != "source"]]]

    def summary(self) -> dict[str, Any]:
        """JSON for the run's result: per-source counts, what failed, total records."""
        return {
            "records": sum(len(r.records) for r in self.results.values() if r.error is None),
            "sources": {name: r.summary() for name, r in self.results.items()},
            "failed": sorted(self.failed),
        }

    def write(self, writer: Any, name: str = "combined.parquet") -> Any:
        """Write the combined data as artifact ``name``: ``.json`` as ``{source: records}``, else a DataFrame."""
        if name.endswith(".json"):
            return writer(name, json.dumps(self.records(), default=str), "application/json")
        return writer(name, self.frame())


async def aggregate(
    sources: Sequence[Source],
    *,
    context: Any = None,
    on_error: Literal["fail", "continue"] = "fail",
    per_host: int = 8,
    cache: EtagCache | None | Literal[False] = None,
    client: httpx.AsyncClient | None = None,
) -> Aggregated:
    """Fetch every source concurrently and return the results (``context`` adds progress, logs, Redis ETags).

    ``cache=None`` uses the run's Redis (or process memory); ``False`` turns conditional requests off.
    """
    if on_error not in ("fail", "continue"):
        raise ConfigError(f"on_error must be 'fail' or 'continue', got {on_error!r}")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ConfigError(f"source names must be unique: {names}")
    headers = {s.name: s.request_headers() for s in sources}  # env references fail here, before any request
    store = None if cache is False else cache if cache is not None else cache_for(context)
    limits = HostLimits(per_host)
    finished = 0

    def done(result: SourceResult) -> None:
        nonlocal finished
        finished += 1
        if context is not None:
            state = f"failed: {result.error}" if result.error else f"{len(result.records)} records"
            context.log.info("source %s: %s", result.name, state)
            context.progress(finished, len(sources), f"{result.name}: {state}"[:200])

    owned = client is None
    http = client or httpx.AsyncClient(limits=httpx.Limits(max_connections=None, max_keepalive_connections=100))
    try:
        fetches = [
            fetch_source(http, s, headers[s.name], limits, store if s.conditional else None, done) for s in sources
        ]
        results = await asyncio.gather(*fetches)
    finally:
        if owned:
            await http.aclose()
    combined = Aggregated({r.name: r for r in results})
    if combined.failed and on_error == "fail":
        raise AggregateError(combined.failed)
    return combined


def collect(sources: Sequence[Source], **options: Any) -> Aggregated:
    """``aggregate`` for plain (non-async) handlers."""
    return asyncio.run(aggregate(sources, **options))
