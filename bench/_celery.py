"""The Celery baseline for bench/spine.py: a prefork worker (one process per slot) running the benchmarks'
no-op handler (one INCR; with ``started``, it first records when it started), on the Redis at REDIS_URL.

Celery's defaults otherwise (acks on receipt, prefetch multiplier 4), with results ignored. Run as
``celery -A _celery worker --pool prefork --concurrency N -Q <BENCH_NAMESPACE>`` from bench/.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

NAMESPACE = os.environ["BENCH_NAMESPACE"]
app = Celery("bench", broker=os.environ["REDIS_URL"])
app.conf.update(
    task_ignore_result=True,
    task_default_queue=NAMESPACE,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    worker_send_task_events=False,
)
_client: redis.Redis | None = None


@app.task(name="noop")
def noop(started: str | None = None) -> None:
    global _client
    now = time.time()
    if _client is None:  # one per prefork child
        _client = redis.Redis.from_url(os.environ["REDIS_URL"])
    if started:
        _client.rpush(started, now)
    _client.incr(f"{NAMESPACE}:bench:count")
