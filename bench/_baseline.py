"""Baselines for bench/spine.py: plain Dramatiq, no Backburner.

`app` mode serves a bare FastAPI endpoint that does one Dramatiq send(); `worker` mode runs a raw
Dramatiq worker with a no-op actor. Both use the Redis at REDIS_URL and the namespace given.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(client=redis.Redis.from_url(os.environ["REDIS_URL"]), namespace=os.environ["BENCH_NAMESPACE"])
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="noop", max_retries=0)
def noop() -> None:
    return None


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
