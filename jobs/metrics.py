"""Counters for ``GET /metrics``, kept in Redis so any API replica can serve the whole deployment's numbers.

API, workers and schedulers are separate processes (often on separate hosts), so in-process Prometheus
counters would each show a slice. Instead every event increments a field of one Redis hash
(``<ns>:metrics``), and the API turns the hash into Prometheus counters and histograms at scrape time:

    runs|<function>|<status>          runs that ended succeeded/failed/cancelled (counted in the final
                                      transaction, so exactly once per run)
    attempts|<function>|<outcome>     attempts by outcome (succeeded, failed, timeout, crashed, cancelled)
    retries|<function>                attempts that failed and scheduled another
    dur|<function>|<le>               attempt durations, one non-cumulative histogram bucket per field
    dursum|<function>, durcount|<function>
    webhook|<function>|<outcome>      webhook delivery attempts by outcome (see ``jobs.delivery.outbox``)

Function names match ``^[A-Za-z0-9_-]+$``, so ``|`` cannot occur in them. Counters only go up; gauges
(queue depth, active runs, scheduler lag) are computed from Redis when scraped.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import redis

from .hooks import RunHook
from .keys import Keys, text
from .runs import Result, Run
from .writes import Writes

#: Upper bounds (seconds) of the attempt-duration histogram: sub-second HTTP-ish work up to Netlify's 15 min.
DURATION_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600)


def _bucket(seconds: float) -> str:
    for bound in DURATION_BUCKETS:
        if seconds <= bound:
            return f"{bound:g}"
    return "+Inf"


def count_delivery(pipe: Any, keys: Keys, function: str, outcome: str | None) -> None:
    """Count one webhook delivery attempt on ``pipe`` (inside the transaction that records it)."""
    pipe.hincrby(keys.metrics, f"webhook|{function}|{outcome or 'unknown'}", 1)


class MetricsHook(RunHook):
    """Counts finished runs exactly once, in their final transaction. Attempt outcomes, retries and durations
    are summed in the process and flushed to Redis once a second in one pipeline, so counting adds no work
    to a run's hot path; a process killed outright loses at most its last second of attempt counts."""

    def __init__(self, keys: Keys, client: redis.Redis | None = None, flush_interval: float = 1.0) -> None:
        self.keys = keys
        self.client = client
        self.flush_interval = flush_interval
        self._pending: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None

    def on_terminal(self, run: Run, pipe: Writes) -> None:
        pipe.hincrby(self.keys.metrics, f"runs|{run.function}|{run.status}", 1)

    def after_attempt(self, run: Run, result: Result) -> None:
        name = run.function
        seconds = max(0.0, float(result.duration_s))
        with self._lock:
            self._pending[f"attempts|{name}|{result.outcome}"] += 1
            self._pending[f"dur|{name}|{_bucket(seconds)}"] += 1
            self._pending[f"durcount|{name}"] += 1
            self._pending[f"dursum|{name}"] += seconds
            if run.status == "retrying":
                self._pending[f"retries|{name}"] += 1
            if self._flusher is None and self.client is not None:
                self._flusher = threading.Thread(target=self._flush_forever, name="backburner-metrics", daemon=True)
                self._flusher.start()
                atexit.register(self.flush)

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.flush_interval)
            self.flush()

    def flush(self) -> None:
        """Write the pending counts; on a Redis error they stay pending for the next flush."""
        with self._lock:
            pending, self._pending = self._pending, defaultdict(float)
        if not pending or self.client is None:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for name, amount in pending.items():
                if name.startswith("dursum|"):
                    pipe.hincrbyfloat(self.keys.metrics, name, amount)
                else:
                    pipe.hincrby(self.keys.metrics, name, int(amount))
            pipe.execute()
        except redis.RedisError:
            with self._lock:
                for name, amount in pending.items():
                    self._pending[name] += amount


@dataclass
class Histogram:
    """One function's attempt durations: cumulative ``(upper bound, count)`` pairs ending in ``+Inf``."""

    buckets: list[tuple[str, float]]
    total: float


@dataclass
class Counters:
    """The counters hash, grouped by metric; keys are label-value tuples."""

    runs: dict[tuple[str, str], float] = field(default_factory=dict)
    attempts: dict[tuple[str, str], float] = field(default_factory=dict)
    retries: dict[tuple[str], float] = field(default_factory=dict)
    webhooks: dict[tuple[str, str], float] = field(default_factory=dict)
    durations: dict[str, Histogram] = field(default_factory=dict)


def read_counters(client: redis.Redis, keys: Keys) -> Counters:
    """Read every counter in one call and shape it for Prometheus (histogram buckets made cumulative)."""
    counters = Counters()
    per_bucket: dict[str, dict[str, float]] = defaultdict(dict)
    sums: dict[str, float] = {}
    for raw_field, raw_value in client.hgetall(keys.metrics).items():
        name = text(raw_field)
        value = float(raw_value)
        kind, *labels = name.split("|")
        if kind == "runs" and len(labels) == 2:
            counters.runs[(labels[0], labels[1])] = value
        elif kind == "attempts" and len(labels) == 2:
            counters.attempts[(labels[0], labels[1])] = value
        elif kind == "retries" and len(labels) == 1:
            counters.retries[(labels[0],)] = value
        elif kind == "webhook" and len(labels) == 2:
            counters.webhooks[(labels[0], labels[1])] = value
        elif kind == "dur" and len(labels) == 2:
            per_bucket[labels[0]][labels[1]] = value
        elif kind == "dursum" and len(labels) == 1:
            sums[labels[0]] = value
    for function in set(per_bucket) | set(sums):
        running = 0.0
        buckets: list[tuple[str, float]] = []
        for bound in [*(f"{b:g}" for b in DURATION_BUCKETS), "+Inf"]:
            running += per_bucket[function].get(bound, 0.0)
            buckets.append((bound, running))
        counters.durations[function] = Histogram(buckets, sums.get(function, 0.0))
    return counters
