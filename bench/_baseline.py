"""Baselines for bench/spine.py: plain Dramatiq, no Backburner.

`app` mode serves a bare FastAPI endpoint that does one Dramatiq send(); `worker` mode runs a raw
Dramatiq worker whose actor is the benchmarks' no-op handler (one INCR; with ``started``, it first records
when it started). Both use the Redis at REDIS_URL and the namespace given.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

NAMESPACE = os.environ["BENCH_NAMESPACE"]
client = redis.Redis.from_url(os.environ["REDIS_URL"])
broker = RedisBroker(client=client, namespace=NAMESPACE)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="noop", max_retries=0)
def noop(started: str | None = None) -> None:
    now = time.time()
    if started:
        client.rpush(started, now)
    client.incr(f"{NAMESPACE}:bench:count")


def serve(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI, Response

    app = FastAPI()

    @app.post("/send")
    def send() -> Response:
        noop.send()
        return Response(status_code=202)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def work(threads: int) -> None:
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    worker.stop()


if __name__ == "__main__":
    if sys.argv[1] == "app":
        serve(int(sys.argv[2]))
    else:
        work(int(sys.argv[2]))
