"""``GET /metrics``: the whole deployment in Prometheus text format, from Redis, at scrape time.

Counters come from the ``<ns>:metrics`` hash that workers, the API and the outbox increment
(``jobs.metrics``); gauges (queue depth, active runs, workers, outbox backlog, scheduler lag) are read
from Redis when scraped. So any API replica serves the full picture and a restart loses nothing. The
endpoint needs the API token like the rest of the API unless ``BACKBURNER_METRICS_PUBLIC=1``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from jobs import clock
from jobs.errors import BackburnerError
from jobs.metrics import read_counters
from jobs.runtime import Runtime
from jobs.schedules.registry import Schedules
from jobs.schedules.state import ScheduleState
from jobs.site.cron import parse_cron
from jobs.site.model import ScheduleSpec

from .deps import require_token
from .errors import responses

router = APIRouter(tags=["health"])

_MGET_BATCH = 1000


def _counter(name: str, doc: str, labels: list[str], values: dict[Any, float]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


class RedisCollector(Collector):
    """Turns Redis state into metric families on every scrape (nothing is cached in the process)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        rt, keys = self.runtime, self.runtime.store.keys
        counters = read_counters(rt.client, keys)
        yield _counter("backburner_runs", "Runs that ended, by final status.", ["function", "status"], counters.runs)
        yield _counter(
            "backburner_attempts", "Attempts by outcome (succeeded, failed, timeout, crashed, cancelled).",
            ["function", "outcome"], counters.attempts,
        )  # fmt: skip
        yield _counter("backburner_retries", "Failed attempts that scheduled a retry.", ["function"], counters.retries)
        yield _counter(
            "backburner_webhook_deliveries", "Webhook delivery attempts by outcome.",
            ["function", "outcome"], counters.webhooks,
        )  # fmt: skip
        durations = HistogramMetricFamily(
            "backburner_attempt_duration_seconds", "Wall-clock duration of attempts.", labels=["function"]
        )
        for name, histogram in sorted(counters.durations.items()):
            durations.add_metric([name], histogram.buckets, sum_value=histogram.total)
        yield durations
        yield from self._queues()
        yield from self._active()
        yield from self._schedules()

    def _queues(self) -> Iterator[Metric]:
        client, broker = self.runtime.client, self.runtime.broker
        pipe = client.pipeline(transaction=False)
        pipe.llen(broker.queue_keys()[0])
        pipe.zcard(broker.queue_keys(delayed=True)[0])
        pipe.zcount(
            self.runtime.store.keys.workers, clock.now_ms() - int(self.runtime.settings.worker_timeout * 1000), "+inf"
        )
        pipe.zcard(self.runtime.store.keys.outbox_due)
        ready, delayed, workers, outbox = pipe.execute()
        depth = GaugeMetricFamily("backburner_queue_depth", "Messages waiting in the broker queue.", labels=["queue"])
        depth.add_metric(["ready"], ready)
        depth.add_metric(["delayed"], delayed)
        yield depth
        yield GaugeMetricFamily("backburner_workers", "Worker processes with a recent heartbeat.", value=workers)
        yield GaugeMetricFamily("backburner_webhook_outbox_pending", "Webhook deliveries not yet done.", value=outbox)

    def _active(self) -> Iterator[Metric]:
        store = self.runtime.store
        ids = store.active_ids()
        counts: Counter[tuple[str, str]] = Counter()
        for i in range(0, len(ids), _MGET_BATCH):
            for raw in store.client.mget([store.keys.run(run_id) for run_id in ids[i : i + _MGET_BATCH]]):
                if raw is not None:
                    record = json.loads(raw)
                    counts[(record["function"], record["status"])] += 1
        gauge = GaugeMetricFamily(
            "backburner_runs_active", "Runs delayed, queued, running or retrying.", labels=["function", "status"]
        )
        for key, value in sorted(counts.items()):
            gauge.add_metric(list(key), value)
        yield gauge

    def _schedules(self) -> Iterator[Metric]:
        rt = self.runtime
        overrides = rt.settings.test_schedules
        specs = Schedules(rt.client, rt.store.keys, lambda: rt.site).all()
        named = {spec.name for spec in specs}
        specs += [
            ScheduleSpec(f.name, f.name, "", f.timezone)
            for f in rt.site.functions.values()
            if f.name in overrides and f.name not in named
        ]
        statuses = ScheduleState(rt.client, rt.store.keys).load([spec.name for spec in specs])
        labels = ["schedule", "function"]
        lag = GaugeMetricFamily(
            "backburner_schedule_lag_seconds",
            "How far the oldest unhandled tick of a schedule is behind now (0 when on time; paused ones are left out).",
            labels=labels,
        )
        paused = GaugeMetricFamily("backburner_schedule_paused", "1 while a schedule is paused.", labels=labels)
        skipped = CounterMetricFamily("backburner_schedule_skipped_ticks", "Ticks that did not run.", labels=labels)
        now = clock.now()
        for spec in specs:
            status, label = statuses[spec.name], [spec.name, spec.function]
            paused.add_metric(label, 1 if status.paused else 0)
            skipped.add_metric(label, status.skipped)
            if status.paused or status.handled_until is None:
                continue
            try:
                expression = overrides.get(spec.name, spec.cron)
                cron = parse_cron(expression, spec.timezone, seconds=spec.name in overrides)
            except BackburnerError:
                continue
            due = cron.next_after(status.handled_until)
            lag.add_metric(label, max(0.0, (now - due).total_seconds()))
        leader = GaugeMetricFamily("backburner_scheduler_leader", "1 while a scheduler holds the leader lease.")
        leader.add_metric([], 1 if rt.client.exists(rt.store.keys.scheduler_lease) else 0)
        yield from (lag, paused, skipped, leader)


@router.get(
    "/metrics",
    summary="Prometheus metrics (token needed unless BACKBURNER_METRICS_PUBLIC=1)",
    operation_id="metrics",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format"},
        **responses(spelled=True),
    },
)
async def metrics(request: Request) -> Response:
    settings = request.app.state.settings
    if not settings.metrics_public:
        await require_token(request)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(request.app.state.runtime))
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
